"""The command lines whose accept/refuse decision must match the reference.

Tokens: @S@ and @T@ are replaced by free 127.0.0.1 addresses, @KEY@ by a key file, @DIR@ by a
temporary directory, @M@ by a free port (for --metrics). `classify` runs one row against a
binary and reports what it did: "run" (spiped: listening on @S@; spipe: exchanged data and
exited 0), "help" (exit 0 with a usage text on standard output), "version" (exit 0 after
printing its name), or "refuse" (non-zero exit). `python3 cli_rows.py` prints the reference's
decisions as JSON; that output is committed as reference-decisions.json, which the Swift unit
tests (Tests/SpipedCommandLineTests) read to check the option parser without running anything.

EXTENSION_ROWS use this implementation's own long options (/work/OPTIONS.md: --help, --config,
--pool, ...), which the reference refuses; each row carries the decision *we* must make. They
are in the JSON too ("extensions", with the reference's decision checked to be "refuse").
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


# This implementation's long options: (program, args, our decision). The reference refuses all.
EXTENSION_ROWS = []


def x(program, expected, *a):
    EXTENSION_ROWS.append((program, list(a), expected))


# Help and version on standard output; like -v, the first of them ends the scan.
x("spiped", "help", "--help"); x("spiped", "help", "-h"); x("spiped", "help", "-e", *B, "--help")
x("spiped", "help", "--help", "-x"); x("spiped", "help", "-h", "extra"); x("spiped", "refuse", "-x", "--help")
x("spiped", "refuse", "--help=1"); x("spiped", "refuse", "--helpme"); x("spiped", "refuse", "-e", *B, "-H")
x("spiped", "version", "--version"); x("spiped", "version", "--version", "-x"); x("spiped", "version", "-e", *B, "--version")
x("spiped", "refuse", "--version=1")
x("spipe", "help", "--help"); x("spipe", "help", "-h"); x("spipe", "help", *P, "-h"); x("spipe", "version", "--version")
x("spipe", "refuse", "-x", "-h"); x("spipe", "refuse", *P, "--config", "@DIR@/c"); x("spipe", "refuse", *P, "--pool", "1")
# --log-level.
x("spiped", "run", "-e", *B, "--log-level", "info"); x("spiped", "run", "-d", *B, "--log-level=debug")
x("spiped", "run", "-e", *B, "--log-level", "error"); x("spiped", "run", "-e", *B, "--log-level", "warning")
x("spiped", "refuse", "-e", *B, "--log-level", "loud"); x("spiped", "refuse", "-e", *B, "--log-level", "INFO")
x("spiped", "refuse", "-e", *B, "--log-level"); x("spiped", "refuse", "-e", *B, "--log-level", "info", "--log-level", "info")
# --metrics.
x("spiped", "run", "-e", *B, "--metrics", "[127.0.0.1]:@M@"); x("spiped", "run", "-d", *B, "--metrics=[127.0.0.1]:@M@")
x("spiped", "refuse", "-e", *B, "--metrics", "[127.0.0.1]"); x("spiped", "refuse", "-e", *B, "--metrics", "@DIR@/metrics.sock")
x("spiped", "refuse", "-e", *B, "--metrics", "[1.2.3]:80")
# --pool and --pool-max-age: -e only.
x("spiped", "run", "-e", *B, "--pool", "2"); x("spiped", "run", "-e", *B, "--pool", "0")
x("spiped", "run", "-e", *B, "--pool", "2", "--pool-max-age", "3"); x("spiped", "run", "-e", *B, "--pool=1", "--pool-max-age=0.5")
x("spiped", "refuse", "-d", *B, "--pool", "2"); x("spiped", "refuse", "-e", *B, "--pool", "1001")
x("spiped", "refuse", "-e", *B, "--pool", "-1"); x("spiped", "refuse", "-e", *B, "--pool", "two")
x("spiped", "refuse", "-e", *B, "--pool-max-age", "3"); x("spiped", "refuse", "-e", *B, "--pool", "1", "--pool-max-age", "0")
x("spiped", "refuse", "-e", *B, "--pool", "1", "--pool-max-age", "nan"); x("spiped", "refuse", "-d", *B, "--pool-max-age", "3")
# --drain-timeout.
x("spiped", "run", "-e", *B, "--drain-timeout", "10"); x("spiped", "run", "-d", *B, "--drain-timeout", "0")
x("spiped", "refuse", "-e", *B, "--drain-timeout", "-1"); x("spiped", "refuse", "-e", *B, "--drain-timeout", "abc")
x("spiped", "refuse", "-e", *B, "--drain-timeout", "nan")
# --socket-mode and --socket-group: Unix-socket sources only.
x("spiped", "refuse", "-e", *B, "--socket-mode", "660"); x("spiped", "refuse", "-e", *B, "--socket-group", "root")
x("spiped", "refuse", "-e", "-s", "@DIR@/s.sock", "-t", "@T@", "-k", "@KEY@", "-F", "--socket-mode", "680")
x("spiped", "refuse", "-e", "-s", "@DIR@/s.sock", "-t", "@T@", "-k", "@KEY@", "-F", "--socket-mode", "1777")
x("spiped", "refuse", "-e", "-s", "@DIR@/s.sock", "-t", "@T@", "-k", "@KEY@", "-F", "--socket-group", "")
# --config excludes the per-pipe options; --check needs --config.
for words in (["-e"], ["-d"], ["-s", "@S@"], ["-t", "@T@"], ["-k", "@KEY@"], ["-n", "5"], ["-f"], ["--pool", "1"]):
    x("spiped", "refuse", "--config", "@DIR@/spiped.conf", "-F", *words)
x("spiped", "refuse", "--config"); x("spiped", "refuse", "--config="); x("spiped", "refuse", "--config", "@DIR@/a", "--config", "@DIR@/b")
x("spiped", "refuse", "--check"); x("spiped", "refuse", "-e", *B, "--check"); x("spiped", "refuse", "--config", "@DIR@/c", "--check=1")


def substitute(args, values):
    out = []
    for a in args:
        for token, value in values.items():
            a = a.replace(token, value)
        out.append(a)
    return out


def classify(binary, program, args, directory, key, source, target, timeout=10.0, metrics_port=9):
    """Runs one row; returns (outcome, stderr text). For spipe rows, `target` must be a working
    spiped -d (so a well-formed command exchanges data and exits 0)."""
    argv = [binary] + substitute(args, {"@S@": source, "@T@": target, "@KEY@": str(key), "@DIR@": str(directory),
                                        "@M@": str(metrics_port)})
    from conftest import is_listening  # local import: this file also runs standalone
    log_path = Path(directory) / "classify.stderr"
    out_path = Path(directory) / "classify.stdout"
    with open(log_path, "w+b") as log, open(out_path, "w+b") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=log, cwd=directory)
        deadline = time.monotonic() + timeout
        outcome = None
        grace_end = None
        try:
            while outcome is None:
                code = proc.poll()
                if code is not None:
                    stdout = out_path.read_text(errors="replace")
                    if code == 0 and "\nusage: " + program in "\n" + stdout:
                        outcome = "help"
                    elif code == 0 and stdout == program + " 1.6.4\n":
                        outcome = "version"
                    elif code == 0 and program == "spipe" and "-v" not in args:
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
    extensions = []
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
            for program, args, ours in EXTENSION_ROWS:
                source = tcp_address(free_port())
                target = server_address if program == "spipe" else tcp_address(free_port())
                theirs, _ = classify("/usr/bin/" + program, program, args, directory, key, source, target,
                                     metrics_port=free_port())
                if theirs != "refuse":
                    raise SystemExit(f"the reference does not refuse extension row {program} {args}: {theirs}")
                extensions.append({"program": program, "args": args, "outcome": ours, "reference": theirs})
        finally:
            server.kill()
            server.wait()
            echo.close()
    json.dump({"reference": "Debian spiped 1.6.2 (/usr/bin/spiped, /usr/bin/spipe)", "decisions": decisions,
               "extensions": extensions}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
