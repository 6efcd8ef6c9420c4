"""Options whose effect is only visible at run time: -u, -D, -b, -n, -k -."""
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import BINARIES, THEIR_SPIPED, connect, free_port, is_listening, tcp_address, wait_until
from test_daemon import alive, launch, read_pid
from test_handshake import exchange


def ids_of(pid):
    """(uid, gid, supplementary groups) of a running process."""
    status = {line.split(":")[0]: line.split(":")[1].split() for line in Path(f"/proc/{pid}/status").read_text().splitlines()}
    return int(status["Uid"][0]), int(status["Gid"][0]), sorted(int(g) for g in status["Groups"])


# (uid, gid, supplementary groups) after -u. The reference clears the supplementary groups and,
# with a user alone, keeps root's gid 0; ours gives a user alone its own groups (initgroups) and
# makes a named group the only group (README, "Where we differ from the reference").
IDS_AFTER_DROP = {
    "theirs": {"nobody:nogroup": (65534, 65534, []), ":nogroup": (0, 65534, []), "nobody": (65534, 0, [])},
    "ours": {"nobody:nogroup": (65534, 65534, [65534]), ":nogroup": (0, 65534, [65534]), "nobody": (65534, 65534, [65534])},
}


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
@pytest.mark.parametrize("spec", ["nobody:nogroup", ":nogroup", "nobody"])
@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_privileges_dropped_after_binding(procs, tmp_path, key, echo, who, spec):
    expected = IDS_AFTER_DROP[who][spec]
    target = echo()
    tmp_path.chmod(0o755)
    key.chmod(0o600)  # read before dropping privileges
    source = tcp_address(free_port())
    proc = procs.spiped(BINARIES[who]["spiped"], "-d", source, target.address, key, "-u", spec)
    wait_until(lambda: ids_of(proc.pid)[:2] == expected[:2] or proc.poll() is not None, what="privilege drop")
    assert ids_of(proc.pid) == expected, "root's supplementary groups or gid were kept" if who == "ours" else ""
    entry = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", entry, source, key)
    assert exchange(entry) == b"ping"


@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_wait_for_dns_daemonizes_first(procs, tmp_path, key, echo, who):
    """-D: the launcher returns at once, the daemon then resolves and listens."""
    target = echo()
    source = f"localhost:{free_port()}"
    launch(procs, [BINARIES[who]["spiped"], "-D", "-d", "-s", source, "-t", target.address, "-k", str(key)], tmp_path)
    pid = read_pid(procs, tmp_path / (source + ".pid"))
    wait_until(lambda: is_listening(source), what="the -D daemon listening")
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not alive(pid), timeout=15, what="daemon exit")


def supports_bind_option(binary):
    """-b arrived in spiped 1.6.3; Debian's 1.6.2 refuses it."""
    try:
        result = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False  # not built: every other test fails loudly
    version = tuple(int(part) for part in result.stderr.split()[1].split(".")[:3])
    return version >= (1, 6, 3)


needs_bind_option = pytest.mark.skipif(not supports_bind_option(BINARIES["ours"]["spiped"]),
                                       reason="the binary under test predates -b (spiped 1.6.3)")


def peer_recorder(peers):
    def handler(conn):
        peers.append(conn.getpeername()[0])
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
    return handler


@needs_bind_option
def test_bind_address_of_outgoing_connections(procs, key, echo):
    """-b (spiped 1.6.3+; Debian's 1.6.2 lacks it): outgoing connections come from that address."""
    peers = []
    target = echo(handler=peer_recorder(peers))
    source = tcp_address(free_port())
    procs.spiped(BINARIES["ours"]["spiped"], "-d", source, target.address, key, "-b", "127.0.0.3")
    entry = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", entry, source, key)
    assert exchange(entry) == b"ping"
    assert peers == ["127.0.0.3"]


@needs_bind_option
def test_spipe_bind_address_and_key_on_stdin(procs, key, echo, tmp_path):
    """spipe -b binds its connection; -k - reads the key from standard input (so no data is sent)."""
    seen = []
    server_side = echo(handler=peer_recorder(seen))

    # A plain TCP listener stands in for spiped -d: we only look at the peer address.
    proc = procs.start([BINARIES["ours"]["spipe"], "-t", server_side.address, "-k", str(key), "-b", "[127.0.0.4]", "-o", "1"])
    proc.wait(timeout=30)
    assert seen and seen[0] == "127.0.0.4"

    target = echo()
    source = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-d", source, target.address, key)
    with open(key, "rb") as stdin, open(tmp_path / "out", "wb") as stdout:
        proc = procs.start([BINARIES["ours"]["spipe"], "-t", source, "-k", "-"], stdin=stdin, stdout=stdout)
        assert proc.wait(timeout=30) == 0, proc.stderr_text()


@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_connection_limit(procs, key, echo, who):
    """-n 2: a third simultaneous connection waits until one of the first two ends."""
    target = echo()
    source = tcp_address(free_port())
    procs.spiped(BINARIES[who]["spiped"], "-d", source, target.address, key, "-n", "2")
    entry = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", entry, source, key, "-o", "30")
    first, second = connect(entry), connect(entry)
    for s in (first, second):
        s.sendall(b"a")
        assert s.recv(1) == b"a"
    third = connect(entry)
    third.sendall(b"c")
    third.settimeout(1.0)
    with pytest.raises(socket.timeout):
        third.recv(1)
    first.close()
    third.settimeout(20)
    assert third.recv(1) == b"c"
    second.close()
    third.close()
