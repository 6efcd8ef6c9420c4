"""Every pipe of a `spiped --config` process interoperates with Debian's spiped at the other
end: our decrypt pipes (one key, several keys, routes by key) serve the reference `spiped -e`
and `spipe`; our encrypt pipes (normal and `fast = yes`) talk to the reference `spiped -d`;
and a key rotation by reload works with reference clients on the other end."""
import os
import socket

from conftest import (
    BINARIES, OUR_SPIPED, connect, free_port, is_listening, sha256, tcp_address, transfer,
    wait_until, write_key)
from spiped_config import (
    RELOAD_SUMMARY, config_text, pipe_section, sighup_and_wait, write_config)

THEIR_SPIPED = BINARIES["theirs"]["spiped"]
THEIR_SPIPE = BINARIES["theirs"]["spipe"]
PAYLOAD_BYTES = 256 << 10


def start_config(procs, directory, name, text, addresses):
    """Our `spiped --config FILE -F` with `text` as FILE; waits until every address listens.
    Returns (process, path of the file)."""
    path = write_config(directory / f"{name}.conf", text)
    proc = procs.start([OUR_SPIPED, "--config", str(path), "-F"])
    wait_until(lambda: all(is_listening(a) for a in addresses) or proc.poll() is not None,
               what=f"{name} listening on {addresses}")
    assert proc.poll() is None, f"spiped --config exited: {proc.stderr_text()}"
    return proc, path


def moves_data(address, size=PAYLOAD_BYTES):
    """True when `size` random bytes sent to `address` come back unchanged (echo target)."""
    payload = os.urandom(size)
    try:
        return sha256(transfer(address, payload)) == sha256(payload)
    except OSError:
        return False


def refused(address):
    """True when a connection to `address` gets nothing back and is closed."""
    try:
        return transfer(address, b"hello?") == b""
    except OSError:
        return True


def spipe_round_trip(procs, directory, address, key, size=PAYLOAD_BYTES):
    """Debian's `spipe -t address -k key` with random bytes on standard input: True when
    exactly those bytes came back on its standard output and it exited 0."""
    payload = os.urandom(size)
    source, sink = directory / f"spipe-in-{key.name}", directory / f"spipe-out-{key.name}"
    source.write_bytes(payload)
    with open(source, "rb") as stdin, open(sink, "wb") as stdout:
        proc = procs.start([THEIR_SPIPE, "-t", address, "-k", str(key)], stdin=stdin,
                           stdout=stdout)
        code = proc.wait(timeout=30)
    return code == 0 and sha256(sink.read_bytes()) == sha256(payload)


def test_our_config_decrypt_pipes_serve_debian_clients(procs, echo, tmp_path):
    keys = {name: write_key(tmp_path / f"{name}.key")
            for name in ("single", "old", "new", "route-a", "route-b", "stranger")}
    targets = {name: echo() for name in ("single", "multi", "route-a", "route-b")}
    sources = {name: tcp_address(free_port()) for name in ("single", "multi", "routed")}
    start_config(procs, tmp_path, "decrypt-pipes", config_text(
        pipe_section("single", mode="decrypt", source=sources["single"],
                     target=targets["single"].address, key=str(keys["single"])),
        pipe_section("multi", mode="decrypt", source=sources["multi"],
                     target=targets["multi"].address, key=[str(keys["old"]), str(keys["new"])]),
        pipe_section("routed", mode="decrypt", source=sources["routed"],
                     route=[f"{keys['route-a']} {targets['route-a'].address}",
                            f"{keys['route-b']} {targets['route-b'].address}"])),
        list(sources.values()))

    # (reference spiped -e holding this key, our pipe it talks to, echo server it must reach)
    clients = [("single", "single", "single"), ("old", "multi", "multi"),
               ("new", "multi", "multi"), ("route-a", "routed", "route-a"),
               ("route-b", "routed", "route-b")]
    for key_name, pipe, target in clients:
        entry = tcp_address(free_port())
        procs.spiped(THEIR_SPIPED, "-e", entry, sources[pipe], keys[key_name])
        before = {name: server.connections for name, server in targets.items()}
        assert moves_data(entry), f"reference -e with {key_name} through [{pipe}]"
        after = {name: server.connections for name, server in targets.items()}
        assert after == {**before, target: before[target] + 1}, (key_name, before, after)

    # The reference spipe, against the multi-key and the routed pipe.
    before = {name: server.connections for name, server in targets.items()}
    assert spipe_round_trip(procs, tmp_path, sources["multi"], keys["new"])
    assert spipe_round_trip(procs, tmp_path, sources["routed"], keys["route-b"])
    after = {name: server.connections for name, server in targets.items()}
    assert after == {**before, "multi": before["multi"] + 1,
                     "route-b": before["route-b"] + 1}

    # A key no pipe holds gets nothing through, from either reference client.
    for pipe in ("single", "multi", "routed"):
        entry = tcp_address(free_port())
        procs.spiped(THEIR_SPIPED, "-e", entry, sources[pipe], keys["stranger"])
        assert refused(entry)
        assert not spipe_round_trip(procs, tmp_path, sources[pipe], keys["stranger"], size=100)
    assert {name: server.connections for name, server in targets.items()} == after


def test_our_config_encrypt_pipes_talk_to_debian_decrypt(procs, echo, tmp_path):
    names = ("one", "two", "fast")
    keys = {name: write_key(tmp_path / f"{name}.key") for name in names}
    targets = {name: echo() for name in names}
    decrypt_sources = {name: tcp_address(free_port()) for name in names}
    for name in names:
        flags = ("-f",) if name == "fast" else ()
        procs.spiped(THEIR_SPIPED, "-d", decrypt_sources[name], targets[name].address,
                     keys[name], *flags)
    entries = {name: tcp_address(free_port()) for name in names}
    start_config(procs, tmp_path, "encrypt-pipes", config_text(*(pipe_section(
        name, mode="encrypt", source=entries[name], target=decrypt_sources[name],
        key=str(keys[name]), **({"fast": "yes"} if name == "fast" else {})) for name in names)),
        list(entries.values()))
    for name in names:
        assert moves_data(entries[name], size=4 << 20), f"[{name}] to the reference -d"
        assert all(moves_data(entries[name], size=1000 + i) for i in range(5)), name
        assert targets[name].connections == 6, (name, targets[name].connections)


def test_rotation_by_reload_with_debian_clients(procs, echo, tmp_path):
    old_key, new_key = write_key(tmp_path / "old.key"), write_key(tmp_path / "new.key")
    target = echo()
    source = tcp_address(free_port())

    def decrypt_text(*keys):
        return config_text(pipe_section("redis", mode="decrypt", source=source,
                                        target=target.address, key=[str(k) for k in keys]))

    proc, path = start_config(procs, tmp_path, "rotation", decrypt_text(old_key), [source])
    old_entry, new_entry = tcp_address(free_port()), tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", old_entry, source, old_key)
    procs.spiped(THEIR_SPIPED, "-e", new_entry, source, new_key)
    assert moves_data(old_entry) and refused(new_entry)
    # A connection of the old key's holder, open across the whole rotation.
    open_connection = connect(old_entry)
    open_connection.sendall(b"before\n")
    assert open_connection.recv(100) == b"before\n"

    for keys, old_served in (((old_key, new_key), True), ((new_key,), False)):
        write_config(path, decrypt_text(*keys))
        ok, log = sighup_and_wait(proc.pid, proc.stderr_text, lambda: proc.poll() is None)
        assert ok and RELOAD_SUMMARY.findall(log) == [
            "reload: 0 added, 0 removed, 1 updated (redis), 0 unchanged"], log
        assert moves_data(new_entry)
        assert moves_data(old_entry) == old_served
        assert spipe_round_trip(procs, tmp_path, source, new_key)

    open_connection.sendall(b"after\n")
    assert open_connection.recv(100) == b"after\n"
    open_connection.shutdown(socket.SHUT_WR)
    assert open_connection.recv(100) == b""
    open_connection.close()
    assert proc.poll() is None, proc.stderr_text()
