"""The command lines whose accept/refuse decision must match the reference.

Tokens: @S@ and @T@ are replaced by free 127.0.0.1 addresses, @KEY@ by a key file, @DIR@ by a
temporary directory. `classify` runs one row against a binary and reports what it did:
"run" (spiped: listening on @S@; spipe: exchanged data and exited 0), "version" (exit 0 after
printing its name), or "refuse" (non-zero exit). `python3 cli_rows.py` prints the reference's
decisions as JSON; that output is committed as reference-decisions.json, which the Swift unit
tests (Tests/SpipedCommandLineTests) read to check the option parser without running anything.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

B = ["-s", "@S@", "-t", "@T@", "-k", "@KEY@", "-F"]
P = ["-t", "@T@", "-k", "@KEY@"]
ROWS = []


def d(*a):
    ROWS.append(("spiped", list(a)))


def p(*a):
    ROWS.append(("spipe", list(a)))


# Modes and flags.
d("-e", *B); d("-d", *B); d("-e", "-d", *B); d(*B); d("-d", "-e", *B); d("-e", "-e", *B)
d("-e", *B, "-f"); d("-e", *B, "-g"); d("-e", *B, "-f", "-g"); d("-e", *B, "-g", "-f")
d("-e", *B, "-f", "-f"); d("-e", *B, "-F"); d("-e", *B, "-j"); d("-e", *B, "-j", "-j"); d("-e", *B, "-D", "-D")
# Re-resolution.
d("-e", *B, "-R"); d("-e", *B, "-R", "-R"); d("-e", *B, "-r", "5"); d("-e", *B, "-r", "5", "-R"); d("-e", *B, "-R", "-r", "5")
d("-e", *B, "-r", "60", "-R"); d("-e", *B, "-r", "0", "-R"); d("-e", *B, "-r", "5", "-r", "6"); d("-e", *B, "-r", "0")
d("-e", *B, "-r", "1.5"); d("-e", *B, "-r", "-1"); d("-e", *B, "-r", "abc"); d("-e", *B, "-r", ""); d("-e", *B, "-r", "inf")
d("-e", *B, "-r", "nan"); d("-e", *B, "-r", "nan", "-R")
# Timeouts.
for o in ["1.5", "0", "-0", "0.0001", "1e3", "0x10", " 2", "inf", "1e-300", "100000000"]:
    d("-e", *B, "-o", o)
for o in ["-1", "abc", "", "1.5x", "2 ", "nan", "1e400", "1e-400", "-inf"]:
    d("-e", *B, "-o", o)
d("-e", *B, "-o", "5", "-o", "5")
# Connection limits.
for n in ["0", "1", "100", "1000000", "100000000000", "0x10", "010", "+5", " 5", "-1", "-5"]:
    d("-e", *B, "-n", n)
for n in ["abc", "", "1.5", "5x", "5 ", "99999999999999999999999", "0x"]:
    d("-e", *B, "-n", n)
d("-e", *B, "-n", "5", "-n", "6")
# A zero value still counts as given (the reference tracks "set", not "non-zero").
d("-e", *B, "-n", "0", "-n", "5"); d("-e", *B, "-o", "0", "-o", "5"); d("-e", *B, "-r", "0", "-r", "5"); d("-e", *B, "-p", "", "-p", "x")
# Pid file, syslog, unknown options, operands.
d("-e", *B, "-p", "@DIR@/x.pid"); d("-e", *B, "-p", "a", "-p", "b"); d("-e", *B, "-p", "")
d("-e", *B, "--syslog"); d("-e", *B, "--syslog", "--syslog"); d("-e", *B, "--syslog=1"); d("-e", *B, "--bogus")
d("-e", *B, "-syslog"); d("-e", *B, "-x"); d("-e", *B, "extra"); d("-e", *B, "--", "extra"); d("-e", *B, "--")
d("-e", *B, "-"); d("-e", "extra", *B)
# Repeated and missing addresses and keys.
d("-e", *B, "-s", "@S@"); d("-e", *B, "-t", "@T@"); d("-e", *B, "-k", "@KEY@")
d("-e", "-t", "@T@", "-k", "@KEY@", "-F"); d("-e", "-s", "@S@", "-k", "@KEY@", "-F"); d("-e", "-s", "@S@", "-t", "@T@", "-F")
d("-e", *B, "-s"); d("-e", "-s", "@S@", "-t", "@T@", "-F", "-k")
# Version.
d(); d("-v"); d("-v", "-e"); d("-e", *B, "-v"); d("-v", "-x"); d("-x", "-v"); d("-e", "-e", "-v"); d("-v", "extra")
# Clustered flags and attached arguments.
d("-eF", "-s", "@S@", "-t", "@T@", "-k", "@KEY@"); d("-Fek", "@KEY@", "-s", "@S@", "-t", "@T@")
d("-e", "-s", "@S@", "-t", "@T@", "-k@KEY@", "-F"); d("-e", "-s", "@S@", "-t", "@T@", "-k", "@KEY@", "-FD")
d("-e", *B, "-n5"); d("-e", *B, "-jR")
# Privilege specifications that are malformed before any lookup.
d("-e", *B, "-u", ""); d("-e", *B, "-u", "nobody:"); d("-e", *B, "-u", ":")
# Target addresses.
for t in ["[127.0.0.1]", "127.0.0.1", "relative/path", "", "[::1]", "[127.0.0.1]:0", "[127.0.0.1]:65536",
          "[127.0.0.1]:abc", "[127.0.0.1]:", "[1.2.3]:80", "[::g]:80", "[127.0.0.1]:-1", "[127.0.0.1]:http",
          "[127.0.0.1]:0x50", "[127.0.0.1:80", "[fe80::1%lo]:80"]:
    d("-e", "-s", "@S@", "-t", t, "-k", "@KEY@", "-F")
for t in ["[127.0.0.1]:080", "localhost:http", "[::1]:9", "::1:9", "localhost:9", "127.0.0.1:9", "/tmp/nonexistent.sock"]:
    d("-e", "-s", "@S@", "-t", t, "-k", "@KEY@", "-F")
# spipe.
p(*P); p(); p("-v"); p(*P, "-v"); p("-t", "@T@"); p("-k", "@KEY@"); p(*P, "-f"); p(*P, "-g"); p(*P, "-f", "-g")
p(*P, "-j"); p(*P, "-j", "-j"); p(*P, "-F"); p(*P, "-e"); p(*P, "extra"); p(*P, "-o", "2"); p(*P, "-o", "0")
p(*P, "-o", "-1"); p(*P, "-o", "nan"); p(*P, "-o", "abc"); p(*P, "-o", "2", "-o", "3"); p(*P, "-t", "@T@")
p(*P, "-k", "@KEY@"); p(*P, "-x"); p(*P, "--syslog"); p("-t"); p(*P, "-jf"); p(*P, "-o2")
for t in ["[127.0.0.1]", "[127.0.0.1]:0", "[1.2.3]:80", "relative"]:
    p("-t", t, "-k", "@KEY@")


def substitute(args, values):
    out = []
    for a in args:
        for token, value in values.items():
            a = a.replace(token, value)
        out.append(a)
    return out


def classify(binary, program, args, directory, key, source, target, timeout=10.0):
    """Runs one row; returns (outcome, stderr text). For spipe rows, `target` must be a working
    spiped -d (so a well-formed command exchanges data and exits 0)."""
    argv = [binary] + substitute(args, {"@S@": source, "@T@": target, "@KEY@": str(key), "@DIR@": str(directory)})
    from conftest import is_listening  # local import: this file also runs standalone
    log_path = Path(directory) / "classify.stderr"
    with open(log_path, "w+b") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=directory)
        deadline = time.monotonic() + timeout
        outcome = None
        grace_end = None
        try:
            while outcome is None:
                code = proc.poll()
                if code is not None:
                    text = log_path.read_text(errors="replace")
                    if code == 0 and program == "spipe" and "-v" not in args:
                        outcome = "run"
                    elif code == 0:
                        outcome = "version"
                    else:
                        outcome = "refuse"
                elif program == "spiped" and is_listening(source):
                    # -u is checked after binding (the reference refuses `-u user:` only when it
                    # drops privileges), so such a row only counts as running if it survives that.
                    if "-u" in args:
                        grace_end = grace_end or time.monotonic() + 1.0
                        if time.monotonic() < grace_end:
                            time.sleep(0.01)
                            continue
                    outcome = "run"
                elif time.monotonic() > deadline:
                    outcome = "hang"
                else:
                    time.sleep(0.005)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    return outcome, log_path.read_text(errors="replace")


def main():
    import tempfile
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import EchoServer, free_port, tcp_address, wait_until, is_listening
    decisions = []
    with tempfile.TemporaryDirectory() as directory:
        key = Path(directory) / "key"
        key.write_bytes(os.urandom(32))
        echo = EchoServer(tcp_address(free_port()))
        server_address = tcp_address(free_port())
        server = subprocess.Popen(["/usr/bin/spiped", "-d", "-s", server_address, "-t", echo.address, "-k", str(key), "-F"])
        wait_until(lambda: is_listening(server_address))
        try:
            for program, args in ROWS:
                binary = "/usr/bin/" + program
                source = tcp_address(free_port())
                target = server_address if program == "spipe" else tcp_address(free_port())
                outcome, _ = classify(binary, program, args, directory, key, source, target)
                decisions.append({"program": program, "args": args, "outcome": outcome})
        finally:
            server.kill()
            server.wait()
            echo.close()
    json.dump({"reference": "Debian spiped 1.6.2 (/usr/bin/spiped, /usr/bin/spipe)", "decisions": decisions},
              sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
