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
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from spiped_testkit import (  # noqa: E402  (re-exported to the tests)
    REPO_ROOT as REPO, ThreadedServer, connect, free_port, is_listening, kill_and_reap, tcp_address,
    wait_until, write_key)
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


class EchoServer(ThreadedServer):
    """A threaded echo server: writes back everything it reads, and when the client shuts down
    its write side, finishes echoing and shuts down its own write side (so half-close is
    forwarded). `handler` may replace the echo behaviour for a connection."""

    def __init__(self, address, handler=None):
        self.address = address
        self.handler = handler or EchoServer.echo
        self.connections = 0
        self.errors = []
        super().__init__(address)

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

    def accepted(self, conn):
        self.connections += 1
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()


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
            kill_and_reap(proc)
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
    """A fresh 256-bit key file, readable by its owner only."""
    return write_key(tmp_path / "key")


@pytest.fixture
def other_key(tmp_path):
    """A second, different key file."""
    return write_key(tmp_path / "other-key")


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
