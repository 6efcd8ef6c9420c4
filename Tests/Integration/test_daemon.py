"""Daemon mode: the parent returns once the daemon listens, the pid file names it, SIGTERM
stops it (and ours removes its Unix socket; the reference leaves the socket file behind)."""
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import BINARIES, THEIR_SPIPED, free_port, is_listening, tcp_address, wait_until
from test_handshake import exchange


def launch(procs, argv, cwd):
    """Runs a daemonizing command: the launcher must exit 0 by itself (outputs go to files: a
    daemon keeps stderr open, so pipes would never see EOF)."""
    with open(cwd / "launcher.out", "wb") as out:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd=cwd, timeout=20)
    assert result.returncode == 0, (cwd / "launcher.out").read_text(errors="replace")


def read_pid(procs, path):
    pid = int(Path(path).read_text())  # decimal, no newline (as the reference writes it)
    procs.daemon_pids.append(pid)
    return pid


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive (the daemon's parent is init, which reaps it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_daemon_unix_socket_pid_file_and_sigterm(procs, tmp_path, key, echo, who):
    binary = BINARIES[who]["spiped"]
    target = echo()
    socket_path = str(tmp_path / "pipe.sock")
    # A -d daemon on a Unix socket, fed by a foreground reference -e.
    launch(procs, [binary, "-d", "-s", socket_path, "-t", target.address, "-k", str(key)], tmp_path)
    pid = read_pid(procs, socket_path + ".pid")
    assert alive(pid) and pid != os.getpid()
    assert is_listening(socket_path), "the launcher returned before the daemon was listening"
    assert os.getsid(pid) == pid, "the daemon is not a session leader"
    entry = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", entry, socket_path, key)
    assert exchange(entry, b"through the daemon") == b"through the daemon"

    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=15, what="daemon exit after SIGTERM")
    if binary != THEIR_SPIPED:
        assert not os.path.exists(socket_path), "the Unix socket was left behind"


@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_daemon_tcp_default_and_explicit_pid_file(procs, tmp_path, key, echo, who):
    binary = BINARIES[who]["spiped"]
    target = echo()
    source = tcp_address(free_port())
    launch(procs, [binary, "-d", "-s", source, "-t", target.address, "-k", str(key)], tmp_path)
    # The default pid file is the -s text plus ".pid", relative to the working directory.
    pid = read_pid(procs, tmp_path / (source + ".pid"))
    assert is_listening(source)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=15, what="daemon exit after SIGTERM")

    source = tcp_address(free_port())
    launch(procs, [binary, "-d", "-s", source, "-t", target.address, "-k", str(key), "-p", str(tmp_path / "x.pid")], tmp_path)
    pid = read_pid(procs, tmp_path / "x.pid")
    assert is_listening(source)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=15, what="daemon exit after SIGTERM")


@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_foreground_writes_no_pid_file(procs, tmp_path, key, echo, who):
    source = tcp_address(free_port())
    procs.spiped(BINARIES[who]["spiped"], "-d", source, echo().address, key, "-p", str(tmp_path / "fg.pid"))
    assert not (tmp_path / "fg.pid").exists()


@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_sigterm_waits_for_open_connection(procs, tmp_path, key, echo, who):
    """SIGTERM stops accepting; the process exits once the last connection ends."""
    from conftest import connect
    import socket as socketmodule
    target = echo()
    source = tcp_address(free_port())
    server = procs.spiped(BINARIES[who]["spiped"], "-d", source, target.address, key)
    entry = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", entry, source, key, "-o", "1")
    s = connect(entry)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    server.send_signal(signal.SIGTERM)
    # The open connection keeps working after SIGTERM ...
    for byte in (b"y", b"z"):
        s.sendall(byte)
        assert s.recv(1) == byte
    assert server.poll() is None, "exited with a connection still open"
    # ... new ones stop being served (the reference takes up to about a second to notice) ...
    wait_until(lambda: exchange(entry) == b"", timeout=15, what="new connections refused after SIGTERM")
    # ... and the process exits once the last connection ends.
    s.shutdown(socketmodule.SHUT_WR)
    assert s.recv(1) == b""
    s.close()
    assert server.wait(timeout=15) == 0
