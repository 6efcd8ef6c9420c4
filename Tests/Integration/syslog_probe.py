"""Runs inside `unshare -m` (a private mount namespace): puts a fresh tmpfs on /dev with the
few device nodes programs need, listens on /dev/log, starts `spiped --syslog` as a daemon,
makes it warn (connection limit reached), and prints what arrived on /dev/log and on stderr as
JSON. Used by test_syslog.py; nothing outside this process's namespace is touched."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

binary, reference, key, workdir = sys.argv[1:5]
foreground = sys.argv[5:6] == ["-F"]  # our extension: --syslog also applies under -F
saved = tempfile.mkdtemp()
subprocess.run(["mount", "--bind", "/dev", saved], check=True)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
for node in ("null", "zero", "urandom", "random"):
    open(f"/dev/{node}", "w").close()
    subprocess.run(["mount", "--bind", f"{saved}/{node}", f"/dev/{node}"], check=True)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import EchoServer, connect, free_port, is_listening, tcp_address, wait_until  # noqa: E402

log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(0.2)
echo = EchoServer(tcp_address(free_port()))
source = tcp_address(free_port())
pidfile = os.path.join(workdir, "syslog.pid")
command = [binary, "-d", "-s", source, "-t", echo.address, "-k", key, "-n", "1", "--syslog", "-p", pidfile]
with open(os.path.join(workdir, "daemon.stderr"), "wb") as err:
    if foreground:
        pid = subprocess.Popen(command + ["-F"], stdin=subprocess.DEVNULL, stdout=err, stderr=err).pid
        wait_until(lambda: is_listening(source))
    else:
        subprocess.run(command, stdin=subprocess.DEVNULL, stdout=err, stderr=err, check=True, timeout=20)
        pid = int(open(pidfile).read())
entry = tcp_address(free_port())
client = subprocess.Popen([reference, "-e", "-s", entry, "-t", source, "-k", key, "-F", "-o", "30"],
                          stderr=subprocess.DEVNULL)
messages = []
try:
    wait_until(lambda: is_listening(entry))
    first = connect(entry)
    first.sendall(b"a")
    assert first.recv(1) == b"a"
    second = connect(entry)  # over the limit: the daemon warns
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not messages:
        try:
            messages.append(log.recv(4096).decode(errors="replace"))
        except socket.timeout:
            pass
    first.close()
    second.close()
finally:
    os.kill(pid, signal.SIGKILL)
    client.kill()
print(json.dumps({"syslog": messages, "stderr": open(os.path.join(workdir, "daemon.stderr")).read()}))
