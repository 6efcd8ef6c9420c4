"""Helpers for the end-to-end scenario tests: managed child processes (spiped, redis-server,
mariadbd) whose readiness is read from the kernel's socket tables, a minimal RESP client and
the Redis checks. Free ports, addresses, readiness and key files come from
Tests/support/spiped_testkit.py (re-exported here for the tests).

Nothing here talks to system services: every server is started by the tests on 127.0.0.1 or a
Unix socket in a private temporary directory and killed at teardown.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from spiped_testkit import REPO_ROOT, listening_tcp_ports, listening_unix_paths, tcp_address, write_key
from spiped_testkit import free_port as free_tcp_port

# -o value given to every spiped -d the tests start: short, so that a plaintext client on the
# encrypted port is dropped quickly.
SPIPED_TIMEOUT_SECONDS = 2
# -o value for every spiped -e: the default, 5 s. The -e timeout covers its connect to the -d,
# and Debian's spiped listens with a backlog of only 10: when our -e opens redis-benchmark's
# 50 connections at once (it accepts and connects in parallel; the C -e paces them by doing one
# handshake at a time), the kernel drops the SYNs that overflow that queue and retries them
# 1 s and 3 s later. With -o 2 the 3 s retry came too late and our -e gave up on the client
# (logged as "connection timed out"; the client saw a reset) in about 1 run of 10.
ENCRYPT_TIMEOUT_SECONDS = 5


def resolve_binary(env_name: str, default: str) -> Path:
    """The spiped binary named by `env_name` (or `default`); relative paths are taken from the
    repository root so the tests can run from any directory."""
    value = Path(os.environ.get(env_name, default))
    return value if value.is_absolute() else REPO_ROOT / value


def find_program(name: str) -> str | None:
    """Path of `name` on PATH or in /usr/sbin (mariadbd lives there and /usr/sbin is not
    always on a non-root PATH)."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def private_dir(prefix: str) -> Path:
    """A fresh directory under /tmp with a short path: Unix socket paths must stay below the
    108-byte sun_path limit, which pytest's own tmp_path can exceed."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class ManagedProcess:
    """A child process whose output goes to a log file and which is stopped at teardown."""

    def __init__(self, name: str, argv: list[str], log_dir: Path):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, start_new_session=True)

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def is_running(self) -> bool:
        return self.popen.poll() is None

    def assert_running(self) -> None:
        """Fails the test (with the process's log) if it has exited, e.g. crashed."""
        code = self.popen.poll()
        assert code is None, (f"{self.name} exited with status {code}\n"
                              f"command: {' '.join(self.argv)}\nlog:\n{self.log_text()}")

    def wait_until(self, is_ready, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not is_ready():
            self.assert_running()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not {what} after {timeout} s\n"
                                     f"log:\n{self.log_text()}")
            time.sleep(0.02)

    def wait_tcp_listening(self, port: int, timeout: float = 20.0) -> None:
        self.wait_until(lambda: port in listening_tcp_ports(), f"listening on port {port}",
                        timeout)

    def wait_unix_listening(self, path: Path, timeout: float = 20.0) -> None:
        self.wait_until(lambda: str(path) in listening_unix_paths(), f"listening on {path}",
                        timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it is still there after 3 s (spiped waits for open
        connections on SIGTERM)."""
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=3)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        self._log.close()


class ProcessGroup:
    """Every process a fixture starts; `stop_all` stops them in reverse order."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def start(self, name: str, argv: list) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.log_dir)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


def start_spiped(group: ProcessGroup, binary: Path, mode: str, source: str, target: str,
                 key: Path, name: str, extra: list[str] | None = None) -> ManagedProcess:
    """Starts `spiped -e|-d -F` (foreground, so no pid file and no daemon to chase) and waits
    until its source socket is listening."""
    assert mode in ("-e", "-d")
    timeout = ENCRYPT_TIMEOUT_SECONDS if mode == "-e" else SPIPED_TIMEOUT_SECONDS
    argv = [binary, mode, "-F", "-s", source, "-t", target, "-k", key,
            "-o", str(timeout)] + (extra or [])
    process = group.start(name, argv)
    if source.startswith("/"):
        process.wait_unix_listening(Path(source))
    else:
        process.wait_tcp_listening(int(source.rsplit(":", 1)[1]))
    return process


def start_spiped_on_free_port(group: ProcessGroup, binary: Path, mode: str, target: str,
                              key: Path, name: str) -> tuple[int, ManagedProcess]:
    """Starts spiped with a free 127.0.0.1 port as its source. Other programs on this machine
    pick ports too, so a lost race ("Address already in use") is retried with another port."""
    for attempt in range(3):
        port = free_tcp_port()
        try:
            return port, start_spiped(group, binary, mode, tcp_address(port), target, key,
                                      f"{name}-{port}")
        except AssertionError as error:
            if attempt == 2 or "Address already in use" not in str(error):
                raise
    raise AssertionError("unreachable")


class Pipe:
    """An spiped -e → spiped -d pair in front of `target`: applications connect to
    127.0.0.1:`plain_port`; encrypted traffic crosses 127.0.0.1:`encrypted_port`."""

    def __init__(self, group: ProcessGroup, encrypt_binary: Path, decrypt_binary: Path,
                 target: str, encrypt_key: Path, decrypt_key: Path,
                 client_source: str | None = None):
        self.encrypted_port, self.decrypt = start_spiped_on_free_port(
            group, decrypt_binary, "-d", target, decrypt_key, "spiped-d")
        encrypted_target = tcp_address(self.encrypted_port)
        if client_source is None:
            self.plain_port, self.encrypt = start_spiped_on_free_port(
                group, encrypt_binary, "-e", encrypted_target, encrypt_key, "spiped-e")
        else:
            self.plain_port = None
            self.encrypt = start_spiped(group, encrypt_binary, "-e", client_source,
                                        encrypted_target, encrypt_key,
                                        f"spiped-e-{self.encrypted_port}")

    def assert_running(self) -> None:
        """Both ends must survive everything the tests do to them."""
        self.decrypt.assert_running()
        self.encrypt.assert_running()


# --- Redis ------------------------------------------------------------------------------------

def start_redis(group: ProcessGroup, data_dir: Path, port: int = 0,
                unix_socket: Path | None = None) -> ManagedProcess:
    """redis-server on 127.0.0.1:`port` (or only on `unix_socket` with port 0), no persistence,
    working directory in `data_dir`."""
    argv = [find_program("redis-server"), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", data_dir, "--daemonize", "no",
            "--protected-mode", "no"]
    if unix_socket is not None:
        argv += ["--unixsocket", unix_socket, "--unixsocketperm", "700"]
    process = group.start(f"redis-{port or 'unix'}", argv)
    if port:
        process.wait_tcp_listening(port)
    if unix_socket is not None:
        process.wait_unix_listening(unix_socket)
    return process


class RespError(Exception):
    """An error reply (`-ERR ...`) from Redis."""


class RespClient:
    """Just enough of the Redis protocol (RESP2) to send commands and read replies over a
    plain socket, independent of redis-cli."""

    def __init__(self, port: int | None = None, unix_path: Path | None = None,
                 timeout: float = 10.0):
        if unix_path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(unix_path))
        else:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def __enter__(self) -> "RespClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def encode(*args) -> bytes:
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(parts)

    def send(self, *args) -> None:
        self.sock.sendall(self.encode(*args))

    def read_reply(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"connection closed or garbled reply: {line[:64]!r}")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body.decode()
        if kind == b"-":
            raise RespError(body.decode())
        if kind == b":":
            return int(body)
        if kind == b"$":
            length = int(body)
            if length < 0:
                return None
            data = self.reader.read(length + 2)
            if len(data) != length + 2:
                raise ConnectionError("connection closed inside a bulk reply")
            return data[:-2]
        if kind == b"*":
            return [self.read_reply() for _ in range(int(body))]
        raise ConnectionError(f"not a RESP reply: {line[:64]!r}")

    def command(self, *args):
        self.send(*args)
        return self.read_reply()


def redis_cli(*args: str, input_bytes: bytes | None = None,
              timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Runs redis-cli with a hard time limit (a hang is a failure, not a stuck test run)."""
    return subprocess.run([find_program("redis-cli"), *args], input=input_bytes,
                          capture_output=True, timeout=timeout)


def assert_redis_ping(port: int) -> None:
    """The smallest proof that a pipe works: redis-cli PING through it answers PONG."""
    result = redis_cli("-h", "127.0.0.1", "-p", str(port), "PING", timeout=15)
    output = result.stdout.decode(errors="replace").strip()
    assert result.returncode == 0 and output == "PONG", (
        f"redis-cli PING via port {port}: exit {result.returncode}, stdout {output!r}, "
        f"stderr {result.stderr.decode(errors='replace')!r}")


BENCHMARK_RESULT = re.compile(r"^(SET|GET): ([0-9.]+) requests per second", re.MULTILINE)


def run_redis_benchmark(port: int, clients: int = 50, requests: int = 20000,
                        timeout: float = 120.0) -> dict[str, float]:
    """`redis-benchmark -c 50 -n 20000 -t set,get -q` through `port`; returns requests per
    second by test and fails on any error line, a non-zero exit or a missing result.
    redis-benchmark retries forever when it cannot connect, so the time limit matters."""
    argv = [find_program("redis-benchmark"), "-h", "127.0.0.1", "-p", str(port),
            "-c", str(clients), "-n", str(requests), "-t", "set,get", "-q"]
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"redis-benchmark did not finish within {timeout} s; output: "
                             f"{(expired.stdout or b'')[-2000:]!r}") from None
    # -q progress lines end in '\r'; keep only the final text of each line.
    text = (result.stdout + result.stderr).decode(errors="replace")
    lines = [segment.strip() for raw in text.split("\n") for segment in raw.split("\r")]
    final_text = "\n".join(line for line in lines if line)
    errors = [line for line in lines
              if re.search(r"error|reset|refused|closed|could not", line, re.IGNORECASE)]
    assert result.returncode == 0, f"redis-benchmark exit {result.returncode}:\n{final_text}"
    assert not errors, f"redis-benchmark reported errors: {errors[:5]}"
    rates = {name: float(rate) for name, rate in BENCHMARK_RESULT.findall(final_text)}
    assert set(rates) == {"SET", "GET"}, f"redis-benchmark results missing:\n{final_text}"
    return rates


def probe_with_plaintext(port: int, payload: bytes, limit: float) -> tuple[bytes, float, str]:
    """Connects to `port` without spiped, sends `payload`, and reads until the far end closes.
    Returns (bytes received, seconds until closed, how it closed). Raises AssertionError if the
    connection is still open after `limit` seconds (a hang)."""
    start = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(payload)
        while True:
            remaining = limit - (time.monotonic() - start)
            if remaining <= 0:
                raise AssertionError(f"port {port} kept a plaintext connection open for more "
                                     f"than {limit} s (received {len(received)} bytes)")
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return received, time.monotonic() - start, "reset"
            if not chunk:
                return received, time.monotonic() - start, "eof"
            received += chunk
