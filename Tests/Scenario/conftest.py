"""Fixtures for the scenario tests: the spiped binaries under test, key files, Redis and
MariaDB servers on private ports, and spiped -e/-d pairs in front of them.

Environment:
  OUR_SPIPED  our spiped (default .build/release/spiped, relative to the repository root)
  REF_SPIPED  Debian's reference spiped 1.6 (default /usr/bin/spiped)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from scenario_support import (  # noqa: E402
    Pipe, ProcessGroup, find_program, free_tcp_port, private_dir, resolve_binary, start_redis,
    tcp_address, write_key)

OUR_SPIPED = resolve_binary("OUR_SPIPED", ".build/release/spiped")
REF_SPIPED = resolve_binary("REF_SPIPED", "/usr/bin/spiped")

# (name, binary for -e, binary for -d): ours on both ends, then each end against Debian's.
PIPE_COMBINATIONS = [
    ("ours-e_ours-d", OUR_SPIPED, OUR_SPIPED),
    ("ours-e_ref-d", OUR_SPIPED, REF_SPIPED),
    ("ref-e_ours-d", REF_SPIPED, OUR_SPIPED),
]


def pytest_sessionstart(session) -> None:
    """A missing binary stops the run with an error, not skips: a skipped suite proves
    nothing."""
    for path, hint in ((OUR_SPIPED, "run `swift build -c release` or set OUR_SPIPED"),
                       (REF_SPIPED, "apt-get install spiped or set REF_SPIPED")):
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.exit(f"spiped binary not found or not executable: {path} ({hint})",
                        returncode=1)


def require_program(name: str) -> str:
    path = find_program(name)
    if path is None:
        pytest.fail(f"{name} is not installed (scripts/install-test-deps installs it)",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def session_dir():
    """One private directory for the whole run: keys, logs, sockets, database files."""
    path = private_dir("spiped-scenario-")
    yield path
    # KEEP_SCENARIO_DIR=1 keeps the logs of every process for a post-mortem.
    if not os.environ.get("KEEP_SCENARIO_DIR"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_key(session_dir: Path) -> Path:
    """The 32-byte key file both ends share."""
    return write_key(session_dir / "spiped.key")


@pytest.fixture(scope="session")
def wrong_key(session_dir: Path) -> Path:
    """A different 32-byte key, for the negative checks."""
    return write_key(session_dir / "other.key")


@pytest.fixture
def processes(session_dir: Path):
    """Processes started by one test; all stopped when it ends."""
    group = ProcessGroup(session_dir)
    yield group
    group.stop_all()


@pytest.fixture(scope="module")
def module_processes(session_dir: Path):
    group = ProcessGroup(session_dir)
    yield group
    group.stop_all()


@pytest.fixture(scope="session")
def session_processes(session_dir: Path):
    group = ProcessGroup(session_dir)
    yield group
    group.stop_all()


@pytest.fixture(scope="module")
def redis_port(module_processes: ProcessGroup, session_dir: Path) -> int:
    """A redis-server on 127.0.0.1, the 'data centre B' server, shared by a test module."""
    require_program("redis-server")
    require_program("redis-cli")
    port = free_tcp_port()
    data_dir = session_dir / f"redis-{port}"
    data_dir.mkdir()
    start_redis(module_processes, data_dir, port=port)
    return port


@pytest.fixture(scope="module", params=PIPE_COMBINATIONS, ids=lambda c: c[0])
def redis_pipe(request, session_dir: Path, redis_port: int, shared_key: Path):
    """spiped -d beside Redis and spiped -e beside the application, for each combination of
    our binary and the reference one; stopped when the tests of that combination are done."""
    _, encrypt_binary, decrypt_binary = request.param
    group = ProcessGroup(session_dir)
    try:
        yield Pipe(group, encrypt_binary, decrypt_binary, tcp_address(redis_port),
                   shared_key, shared_key)
    finally:
        group.stop_all()


class MariaDBServer:
    """A throwaway mariadbd: its own datadir, Unix socket and TCP port on 127.0.0.1, with a
    database `scenario` and a password user `app`@`127.0.0.1` (the address spiped -d connects
    from)."""

    user = "app"
    password = "scenario-password"
    database = "scenario"

    def __init__(self, group: ProcessGroup, base: Path):
        self.base = base
        self.data_dir = base / "data"
        self.socket = base / "mysqld.sock"
        self.port = free_tcp_port()
        install = [require_program("mariadb-install-db"), "--no-defaults",
                   f"--datadir={self.data_dir}", "--auth-root-authentication-method=normal",
                   "--skip-test-db"]
        server = [require_program("mariadbd"), "--no-defaults", f"--datadir={self.data_dir}",
                  f"--socket={self.socket}", f"--port={self.port}", "--bind-address=127.0.0.1",
                  "--skip-name-resolve", f"--pid-file={base / 'mysqld.pid'}",
                  f"--log-error={base / 'mysqld.err'}", "--skip-log-bin",
                  "--innodb-buffer-pool-size=64M", "--max-connections=50"]
        if os.geteuid() == 0:
            # mariadbd refuses to run as root unless told to.
            install.append("--user=root")
            server.append("--user=root")
        result = subprocess.run(install, capture_output=True, timeout=120)
        if result.returncode != 0:
            raise AssertionError(f"mariadb-install-db failed:\n"
                                 f"{(result.stdout + result.stderr).decode(errors='replace')}")
        self.process = group.start("mariadbd", server)
        self.process.wait_tcp_listening(self.port, timeout=60)
        self.process.wait_unix_listening(self.socket, timeout=60)
        self.admin_sql(
            f"CREATE DATABASE {self.database};"
            f"CREATE USER '{self.user}'@'127.0.0.1' IDENTIFIED BY '{self.password}';"
            f"GRANT ALL ON {self.database}.* TO '{self.user}'@'127.0.0.1';")

    def admin_sql(self, sql: str) -> str:
        """Runs SQL as root over the Unix socket (not through any pipe)."""
        result = subprocess.run(
            [require_program("mariadb"), "--no-defaults", f"--socket={self.socket}", "-u",
             "root", "--batch", "--skip-column-names", "-e", sql],
            capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        return result.stdout.decode()

    def client(self, port: int, sql: str, timeout: float = 60.0,
               input_bytes: bytes | None = None) -> subprocess.CompletedProcess:
        """The unchanged `mariadb` client as the application runs it, over TCP to `port`."""
        argv = [require_program("mariadb"), "--no-defaults", "-h", "127.0.0.1", "-P", str(port),
                "--protocol=TCP", "-u", self.user, f"-p{self.password}", "--batch",
                "--skip-column-names", self.database]
        if sql:
            argv += ["-e", sql]
        return subprocess.run(argv, input=input_bytes, capture_output=True, timeout=timeout)


@pytest.fixture(scope="session")
def mariadb(session_processes: ProcessGroup, session_dir: Path) -> MariaDBServer:
    """One MariaDB server for the whole session (its start-up takes seconds)."""
    base = session_dir / "mariadb"
    base.mkdir()
    return MariaDBServer(session_processes, base)
