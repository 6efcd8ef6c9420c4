"""Local safety of the files spiped creates and removes (issue 11, items 4, 5 and 8):

- `-s PATH` replaces only a stale socket: a regular file, FIFO, symbolic link or device node at
  PATH makes spiped refuse to start and is left untouched (as root, `-s /dev/null` used to
  delete /dev/null); a live socket is refused; a socket nobody listens on is still replaced.
- At exit spiped removes its socket file only if the path still names the socket it bound, so
  a process draining after SIGTERM does not delete the socket of its replacement.
- The pid file is not written through a symbolic link, is locked so that a second instance
  with the same pid file refuses to start, and is removed at a clean exit.

Every spiped started here is killed at teardown (daemons by the pid they report); each file
in the way lives in the test's temporary directory.
"""
import os
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

from robust_harness import OUR_SPIPED, TargetServer, wait_until
from spiped_testkit import (connect, free_port, is_listening, kill_and_reap, listening_unix_paths,
                            tcp_address)


def alive(pid):
    """True while `pid` runs (a zombie, left for init to reap, is not running)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (ProcessLookupError, OSError):
        return False


@pytest.fixture
def spiped(tmp_path):
    """Runs our spiped. `spiped.foreground(*args)` starts `-F` and returns the Popen;
    `spiped.launch(*args)` runs a daemonizing command to its end and returns (exit status,
    output); `spiped.track(pid)` adds a daemon to kill at teardown."""
    class Runner:
        processes = []
        daemon_pids = []
        count = 0

        def log_file(self):
            Runner.count += 1
            return tmp_path / f"spiped-{Runner.count}.log"

        def foreground(self, *args):
            log = self.log_file()
            with open(log, "wb") as out:
                process = subprocess.Popen([OUR_SPIPED, *map(str, args), "-F"], stdin=subprocess.DEVNULL,
                                           stdout=out, stderr=out)
            process.log = log
            self.processes.append(process)
            return process

        def launch(self, *args):
            # A daemon keeps stderr open: output goes to a file, never to a pipe.
            log = self.log_file()
            with open(log, "wb") as out:
                result = subprocess.run([OUR_SPIPED, *map(str, args)], stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=out, timeout=20)
            return result.returncode, log.read_text(errors="replace")

        def track(self, pid):
            self.daemon_pids.append(pid)
            return pid

    runner = Runner()
    yield runner
    for process in runner.processes:
        kill_and_reap(process)
    for pid in runner.daemon_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def echo():
    server = TargetServer("echo")
    yield server
    server.close()


def refused_start(process, timeout=10):
    """Waits for a foreground spiped that must refuse to start; returns (status, output). One
    that starts serving instead is killed after `timeout` seconds (status None)."""
    try:
        status = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_and_reap(process)
        status = None
    return status, process.log.read_text(errors="replace")


def snapshot(path):
    """What a file is, without following a final symbolic link: identity, type, and its
    contents or link target."""
    info = os.lstat(path)
    what = (info.st_dev, info.st_ino, stat.S_IFMT(info.st_mode), info.st_rdev)
    if stat.S_ISLNK(info.st_mode):
        return what + (os.readlink(path),)
    if stat.S_ISREG(info.st_mode):
        return what + (Path(path).read_bytes(),)
    return what


def stale_socket(path):
    """Leaves a socket file at `path` with nothing listening on it (bound, then closed)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()


def make_regular_file(path):
    path.write_bytes(b"precious data\n")
    return "a regular file"


def make_fifo(path):
    os.mkfifo(path)
    return "a FIFO"


def make_symlink_to_file(path):
    (path.parent / "file").write_bytes(b"what the link points to\n")
    os.symlink(path.parent / "file", path)
    return "a symbolic link"


def make_symlink_to_stale_socket(path):
    stale_socket(path.parent / "dead.sock")
    os.symlink(path.parent / "dead.sock", path)
    return "a symbolic link"


def make_character_device(path):
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # the same device as /dev/null
    return "a character device"


def make_directory(path):
    (path / "inside").mkdir(parents=True)
    return "a directory"


@pytest.mark.beyond_reference
@pytest.mark.parametrize("make", [make_regular_file, make_fifo, make_symlink_to_file,
                                  make_symlink_to_stale_socket, make_character_device, make_directory],
                         ids=lambda make: make.__name__[len("make_"):])
def test_a_file_that_is_not_a_socket_is_never_replaced(spiped, tmp_path, key, make):
    path = tmp_path / "in-the-way"
    what = make(path)
    before = snapshot(path)
    neighbours = {name: snapshot(tmp_path / name) for name in ("file", "dead.sock") if (tmp_path / name).exists()}

    status, output = refused_start(spiped.foreground("-d", "-s", path, "-t", "[127.0.0.1]:9", "-k", key))
    assert status == 1, f"spiped did not refuse to start (status {status}): {output}"
    assert f"{path}: {what} is in the way; refusing to replace it" in output, output
    assert os.path.lexists(path), f"{what} at the -s path was deleted"
    assert snapshot(path) == before, f"{what} at the -s path was changed"
    for name, seen in neighbours.items():
        assert snapshot(tmp_path / name) == seen, f"{name}, behind the symbolic link, was changed"


def test_a_stale_socket_is_replaced(spiped, tmp_path, key, echo):
    path = tmp_path / "stale.sock"
    stale_socket(path)
    process = spiped.foreground("-d", "-s", path, "-t", tcp_address(echo.port), "-k", key)
    wait_until(lambda: str(path) in listening_unix_paths() or process.poll() is not None,
               timeout=10, what="spiped listening on the stale socket's path")
    assert process.poll() is None, process.log.read_text(errors="replace")
    # (Listening now, so it is a new socket: the freed inode number may well be reused.)
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_live_socket_is_refused(spiped, tmp_path, key):
    path = tmp_path / "live.sock"
    owner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    owner.bind(str(path))
    owner.listen(4)
    try:
        inode = os.lstat(path).st_ino
        status, output = refused_start(spiped.foreground("-d", "-s", path, "-t", "[127.0.0.1]:9", "-k", key))
        assert status == 1, f"spiped did not refuse to start (status {status}): {output}"
        assert f"cannot listen on {path}: bind: Address already in use" in output, output
        assert os.lstat(path).st_ino == inode
        with connect(str(path), timeout=5):
            pass  # the owner still gets its connections
    finally:
        owner.close()


def echo_through(sock, data):
    sock.sendall(data)
    reply = b""
    while len(reply) < len(data):
        chunk = sock.recv(len(data) - len(reply))
        assert chunk, "the connection ended early"
        reply += chunk
    return reply


def refused(path, missing_counts=False):
    """True when connecting to the socket file is refused; with `missing_counts`, also while the
    path does not exist (a starting process unlinks a stale file just before it binds)."""
    try:
        connect(str(path), timeout=2).close()
    except ConnectionRefusedError:
        return True
    except FileNotFoundError:
        if missing_counts:
            return True
        raise
    return False


@pytest.mark.beyond_reference
def test_a_draining_process_leaves_its_replacements_socket_alone(spiped, tmp_path, key, echo):
    """A (SIGTERMed, draining one connection) must not delete B's socket when it exits."""
    path = tmp_path / "app.sock"
    decrypt_port = free_port()
    decrypt = spiped.foreground("-d", "-s", tcp_address(decrypt_port), "-t", tcp_address(echo.port), "-k", key)
    wait_until(lambda: is_listening(tcp_address(decrypt_port)), timeout=10, what="spiped -d listening")

    first = spiped.foreground("-e", "-s", path, "-t", tcp_address(decrypt_port), "-k", key)
    wait_until(lambda: str(path) in listening_unix_paths(), timeout=10, what="spiped A listening")
    held = connect(str(path), timeout=10)
    assert echo_through(held, b"before SIGTERM") == b"before SIGTERM"

    first.send_signal(signal.SIGTERM)
    wait_until(lambda: refused(path), timeout=10, what="A to stop accepting after SIGTERM")
    assert first.poll() is None, "A exited with a connection still open"

    second = spiped.foreground("-e", "-s", path, "-t", tcp_address(decrypt_port), "-k", key)
    wait_until(lambda: not refused(path, missing_counts=True) or second.poll() is not None, timeout=10,
               what="B to take over the path")
    assert second.poll() is None, second.log.read_text(errors="replace")
    replacement = os.lstat(path).st_ino

    # A still serves its open connection, then exits once it closes.
    assert echo_through(held, b"while draining") == b"while draining"
    held.close()
    assert first.wait(timeout=15) == 0, first.log.read_text(errors="replace")

    assert os.path.lexists(path), "A deleted B's socket file when it exited"
    assert os.lstat(path).st_ino == replacement
    with connect(str(path), timeout=10) as sock:
        assert echo_through(sock, b"through B") == b"through B"
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=15) == 0
    assert not os.path.lexists(path), "B did not remove its own socket file at exit"


def processes_with_argument(argument):
    """Pids of the running processes of our binary that have `argument` on their command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0] == OUR_SPIPED.encode() and argument.encode() in argv and alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def daemon_args(echo, key, pid_file, port=None):
    return ["-d", "-s", tcp_address(port or free_port()), "-t", tcp_address(echo.port), "-k", key,
            "-p", pid_file]


@pytest.mark.beyond_reference
def test_a_symbolic_link_as_pid_file_is_refused(spiped, tmp_path, key, echo):
    victim = tmp_path / "victim"
    victim.write_bytes(b"not a pid file\n")
    pid_file = tmp_path / "spiped.pid"
    os.symlink(victim, pid_file)
    port = free_port()
    status, output = spiped.launch(*daemon_args(echo, key, pid_file, port))
    if status == 0:  # the old code followed the link: stop the daemon it started
        spiped.track(int(victim.read_text()))
    assert status == 1, f"the launcher reported success: {output}"
    assert f"pid file {pid_file} is a symbolic link; refusing to follow it" in output, output
    assert victim.read_bytes() == b"not a pid file\n", "the pid was written through the link"
    assert os.readlink(pid_file) == str(victim)
    wait_until(lambda: not is_listening(tcp_address(port)), timeout=10, what="the refused daemon to exit")


@pytest.mark.beyond_reference
def test_a_second_instance_with_the_same_pid_file_refuses_to_start(spiped, tmp_path, key, echo):
    pid_file = tmp_path / "spiped.pid"
    first_port = free_port()
    status, output = spiped.launch(*daemon_args(echo, key, pid_file, first_port))
    assert status == 0, output
    first = spiped.track(int(pid_file.read_text()))
    assert is_listening(tcp_address(first_port))

    second_port = free_port()
    status, output = spiped.launch(*daemon_args(echo, key, pid_file, second_port))
    if status == 0:
        spiped.track(int(pid_file.read_text()))
    assert status == 1, f"the second instance started: {output}"
    assert f"pid file {pid_file} is locked by running process {first}" in output, output
    assert pid_file.read_text() == str(first), "the second instance overwrote the pid file"
    wait_until(lambda: not is_listening(tcp_address(second_port)), timeout=10,
               what="the refused second daemon to exit")
    assert alive(first) and is_listening(tcp_address(first_port)), "the first instance stopped"


@pytest.mark.beyond_reference
def test_a_clean_exit_removes_the_pid_file(spiped, tmp_path, key, echo):
    pid_file = tmp_path / "spiped.pid"
    status, output = spiped.launch(*daemon_args(echo, key, pid_file))
    assert status == 0, output
    pid = spiped.track(int(pid_file.read_text()))
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=15, what="the daemon to exit after SIGTERM")
    wait_until(lambda: not pid_file.exists(), timeout=2, what="the pid file to be removed")


def test_dev_null_as_pid_file_still_works_for_several_instances(spiped, tmp_path, key, echo):
    """`-p /dev/null` (no pid file wanted) is written as the reference does, never locked or
    removed: two daemons can both use it, and /dev/null survives them."""
    before = snapshot("/dev/null")
    ports = [free_port(), free_port()]
    for port in ports:
        status, output = spiped.launch(*daemon_args(echo, key, "/dev/null", port))
        assert status == 0, output
    pids = [pid for port in ports for pid in processes_with_argument(tcp_address(port))]
    assert len(pids) == 2, pids
    for pid in pids:
        spiped.track(pid)
        os.kill(pid, signal.SIGTERM)
    for pid in pids:
        wait_until(lambda: not alive(pid), timeout=15, what="the daemons to exit after SIGTERM")
    assert snapshot("/dev/null") == before
