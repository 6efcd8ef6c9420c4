"""Shared fixtures of the interoperability suite.

The binaries under test are parameters: OUR_SPIPED / OUR_SPIPE (default: the release build
in .build/release), THEIR_SPIPED / THEIR_SPIPE (default: Debian's /usr/bin/spiped and spipe).
Pointing OUR_* at the reference binaries checks the harness itself.

Every server listens on 127.0.0.1 or on a Unix socket in a per-test temporary directory;
readiness is detected by polling /proc/net for the listening socket (no sleeps); every process
a test starts is killed at teardown.
"""
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OUR_SPIPED = os.environ.get("OUR_SPIPED", str(REPO / ".build/release/spiped"))
OUR_SPIPE = os.environ.get("OUR_SPIPE", str(REPO / ".build/release/spipe"))
THEIR_SPIPED = os.environ.get("THEIR_SPIPED", "/usr/bin/spiped")
THEIR_SPIPE = os.environ.get("THEIR_SPIPE", "/usr/bin/spipe")

BINARIES = {
    "ours": {"spiped": OUR_SPIPED, "spipe": OUR_SPIPE},
    "theirs": {"spiped": THEIR_SPIPED, "spipe": THEIR_SPIPE},
}


def pytest_sessionstart(session):
    """Stops at once, with a clear message, when a binary under test is missing."""
    missing = [path for pair in BINARIES.values() for path in pair.values() if not os.access(path, os.X_OK)]
    if missing:
        pytest.exit("missing binaries: " + ", ".join(missing) + " (run `swift build -c release`, "
                    "or set OUR_SPIPED/OUR_SPIPE)", returncode=2)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_address(port):
    """spiped's spelling of 127.0.0.1:port."""
    return f"[127.0.0.1]:{port}"


def _listening_tcp_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _listening_unix_paths():
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
        return address in _listening_unix_paths()
    return int(address.rsplit(":", 1)[1]) in _listening_tcp_ports()


def wait_until(predicate, timeout=10.0, what="condition"):
    """Polls `predicate` every 5 ms until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def connect(address, timeout=30.0):
    """A connected stream socket to `address` (spiped syntax)."""
    if address.startswith("/"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(address)
    else:
        host, port = address.rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    return s


class EchoServer:
    """A threaded echo server: writes back everything it reads, and when the client shuts down
    its write side, finishes echoing and shuts down its own write side (so half-close is
    forwarded). `on_accept` may replace the echo behaviour for a connection."""

    def __init__(self, address, handler=None):
        self.address = address
        self.handler = handler or EchoServer.echo
        if address.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(address)
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            host, port = address.rsplit(":", 1)
            self.sock.bind((host.strip("[]"), int(port)))
        self.sock.listen(256)
        self.connections = 0
        self.errors = []
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    @staticmethod
    def echo(conn):
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)

    def _serve(self, conn):
        try:
            with conn:
                self.handler(conn)
        except OSError as error:  # a reset by the proxy is a legitimate end in some tests
            self.errors.append(error)

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def transfer(address, payload, chunk=1 << 16):
    """Sends `payload` to `address` while reading the reply concurrently, then shuts down the
    write side and reads to EOF. Returns the reply bytes."""
    s = connect(address)
    received = []
    failure = []

    def reader():
        try:
            while True:
                data = s.recv(1 << 16)
                if not data:
                    return
                received.append(data)
        except OSError as error:
            failure.append(error)

    t = threading.Thread(target=reader)
    t.start()
    view = memoryview(payload)
    for offset in range(0, len(view), chunk):
        s.sendall(view[offset:offset + chunk])
    s.shutdown(socket.SHUT_WR)
    t.join(timeout=120)
    s.close()
    if failure:
        raise failure[0]
    return b"".join(received)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Processes:
    """Starts programs and kills every one of them at teardown."""

    def __init__(self, directory):
        self.directory = directory
        self.started = []
        self.daemon_pids = []
        self.count = 0

    def start(self, argv, **kwargs):
        """Starts argv with stderr captured to a file (readable with `.stderr_text()`)."""
        self.count += 1
        log = open(self.directory / f"proc{self.count}.stderr", "w+b")
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, stderr=log, **kwargs)
        proc.log = log
        proc.stderr_text = lambda: Path(log.name).read_text(errors="replace")
        self.started.append(proc)
        return proc

    def spiped(self, binary, mode, source, target, key, *extra, wait=True):
        """Starts `binary -mode -s source -t target -k key -F extra...` and waits until it listens."""
        proc = self.start([binary, mode, "-s", source, "-t", target, "-k", str(key), "-F", *extra])
        if wait:
            wait_until(lambda: is_listening(source) or proc.poll() is not None, what=f"{binary} listening on {source}")
            assert proc.poll() is None, f"{binary} exited early: {proc.stderr_text()}"
        return proc

    def kill_all(self):
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            proc.log.close()
        for pid in self.daemon_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


TEST_TIME_LIMIT_SECONDS = 90


@pytest.fixture(autouse=True)
def time_limit():
    """Fails a test that runs longer than TEST_TIME_LIMIT_SECONDS (a hung binary must not
    stall the whole suite); uses SIGALRM, so it interrupts the main thread's blocking calls."""
    def expired(signum, frame):
        raise TimeoutError(f"test exceeded {TEST_TIME_LIMIT_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_TIME_LIMIT_SECONDS)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def procs(tmp_path):
    p = Processes(tmp_path)
    yield p
    p.kill_all()


@pytest.fixture
def key(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o600)
    return path


@pytest.fixture
def other_key(tmp_path):
    path = tmp_path / "other-key"
    path.write_bytes(os.urandom(32))
    path.chmod(0o600)
    return path


@pytest.fixture
def echo(tmp_path):
    servers = []

    def make(address=None, handler=None):
        server = EchoServer(address or tcp_address(free_port()), handler)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
