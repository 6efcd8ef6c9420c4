"""Helpers shared by the three pytest suites (Tests/Integration, Tests/Scenario,
Tests/Robustness): free ports, spiped's address spelling, readiness read from the kernel's
socket tables, bounded waits, connections, key files, a threaded listening server and process
reaping.

Standard library only; no pytest fixtures live here (each suite's conftest.py defines its own
fixtures on top of these). A suite makes this module importable with
`sys.path.insert(0, <repository>/Tests/support)` once, in its conftest.py.
"""
import os
import socket
import subprocess
import threading
import time
from pathlib import Path

# The repository root (this file is <root>/Tests/support/spiped_testkit.py).
REPO_ROOT = Path(__file__).resolve().parents[2]

# Kernel tables of TCP sockets, IPv4 then IPv6.
TCP_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_address(port):
    """spiped's spelling of 127.0.0.1:port."""
    return f"[127.0.0.1]:{port}"


# --- readiness without side effects -------------------------------------------------------
# Connecting to an spiped -e port to see whether it is up would make it open a pipe of its own,
# so readiness is read from the kernel's socket tables instead.

def listening_tcp_ports(tables=TCP_TABLES):
    """TCP ports in LISTEN state on this host, read from `tables` (a table that cannot be
    read, e.g. tcp6 without IPv6, is skipped)."""
    ports = set()
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def listening_unix_paths():
    """Paths of the Unix stream sockets in listening state (from /proc/net/unix)."""
    paths = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Flags 00010000 = __SO_ACCEPTCON: a listening socket.
        if len(fields) >= 8 and int(fields[3], 16) & 0x10000:
            paths.add(fields[7])
    return paths


def is_listening(address):
    """True when something listens on `address` (spiped syntax: [127.0.0.1]:port or /path)."""
    if address.startswith("/"):
        return address in listening_unix_paths()
    return int(address.rsplit(":", 1)[1]) in listening_tcp_ports()


def wait_until(predicate, timeout=10.0, what="condition", interval=0.005):
    """Polls `predicate` every `interval` seconds until it is true; raises AssertionError
    (failing the test) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- sockets ----------------------------------------------------------------------------------

def connect(address, timeout=30.0):
    """A connected stream socket to `address` (spiped syntax: [host]:port or /path)."""
    if address.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(address)
    else:
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    return s


def shutdown_quietly(sock, how=socket.SHUT_RDWR):
    """`sock.shutdown(how)`, ignoring the error of a socket that is already gone."""
    try:
        sock.shutdown(how)
    except OSError:
        pass


class ThreadedServer:
    """A listening stream socket on `address` (spiped syntax; port 0 picks a free port) whose
    accept loop runs on a daemon thread and hands every connection to `accepted(conn)`, which
    a subclass defines. A subclass sets its own state before calling `__init__`, since the
    loop starts at once. `port` is the TCP port bound (None for a Unix socket)."""

    def __init__(self, address, backlog=256, receive_buffer=None):
        if address.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(address)
            self.port = None
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if receive_buffer:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            host, port = address.rsplit(":", 1)
            self.sock.bind((host.strip("[]"), int(port)))
            self.port = self.sock.getsockname()[1]
        self.sock.listen(backlog)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def accepted(self, conn):
        """Called on the accept thread for every new connection."""
        raise NotImplementedError

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # the listening socket was closed
                return
            self.accepted(conn)

    def close(self):
        """Stops accepting: shuts the listening socket down (waking the accept loop) and
        closes it."""
        shutdown_quietly(self.sock)
        self.sock.close()


# --- files and processes ----------------------------------------------------------------------

def write_key(path, data=None):
    """Writes a key file readable by its owner only (32 random bytes unless `data` is given),
    like `dd if=/dev/urandom bs=32 count=1 of=spiped.key`; returns `path`."""
    path.write_bytes(os.urandom(32) if data is None else data)
    path.chmod(0o600)
    return path


def kill_and_reap(process, timeout=10):
    """SIGKILLs `process` (a subprocess.Popen) if it still runs, then waits up to `timeout`
    seconds for it to be reaped."""
    if process.poll() is None:
        process.kill()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
