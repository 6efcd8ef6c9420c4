"""Data moves byte for byte between our binaries and the reference, in every pairing."""
import hashlib
import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BINARIES, EchoServer, free_port, sha256, tcp_address, transfer

MEGABYTES = 20

# (client side -e, server side -d)
SPIPED_PAIRS = [("ours", "theirs"), ("theirs", "ours"), ("ours", "ours")]


class HashingEcho:
    """Echo handler that also records the sha256 of what each connection received."""

    def __init__(self):
        self.digests = []

    def __call__(self, conn):
        digest = hashlib.sha256()
        while True:
            data = conn.recv(1 << 16)
            if not data:
                break
            digest.update(data)
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        self.digests.append(digest.hexdigest())


def start_pair(procs, echo_address, key, client, server, client_flags=(), server_flags=(), client_key=None):
    """Starts `server` spiped -d in front of the echo server and `client` spiped -e in front of
    it; returns the -e listening address."""
    server_address = tcp_address(free_port())
    procs.spiped(BINARIES[server]["spiped"], "-d", server_address, echo_address, key, *server_flags)
    client_address = tcp_address(free_port())
    procs.spiped(BINARIES[client]["spiped"], "-e", client_address, server_address, client_key or key, *client_flags)
    return client_address


@pytest.mark.parametrize("client,server", SPIPED_PAIRS, ids=[f"{c}-e_to_{s}-d" for c, s in SPIPED_PAIRS])
def test_spiped_pair_moves_20mb_both_ways(procs, key, echo, client, server):
    handler = HashingEcho()
    target = echo(handler=handler)
    entry = start_pair(procs, target.address, key, client, server)
    payload = os.urandom(MEGABYTES << 20)
    reply = transfer(entry, payload)
    assert handler.digests == [sha256(payload)], "client-to-target direction corrupted"
    assert len(reply) == len(payload)
    assert sha256(reply) == sha256(payload), "target-to-client direction corrupted"


SPIPE_PAIRS = [("ours", "theirs"), ("theirs", "ours")]


@pytest.mark.parametrize("client,server", SPIPE_PAIRS, ids=[f"{c}-spipe_to_{s}-d" for c, s in SPIPE_PAIRS])
def test_spipe_moves_20mb_both_ways(procs, key, echo, tmp_path, client, server):
    handler = HashingEcho()
    target = echo(handler=handler)
    server_address = tcp_address(free_port())
    procs.spiped(BINARIES[server]["spiped"], "-d", server_address, target.address, key)
    payload = os.urandom(MEGABYTES << 20)
    (tmp_path / "in").write_bytes(payload)
    with open(tmp_path / "in", "rb") as stdin, open(tmp_path / "out", "wb") as stdout:
        proc = procs.start([BINARIES[client]["spipe"], "-t", server_address, "-k", str(key)], stdin=stdin, stdout=stdout)
        assert proc.wait(timeout=120) == 0, proc.stderr_text()
    reply = (tmp_path / "out").read_bytes()
    assert handler.digests == [sha256(payload)]
    assert sha256(reply) == sha256(payload)


def test_spipe_fails_without_server(procs, key):
    """spipe exits non-zero when nothing listens at the target."""
    proc = procs.start([BINARIES["ours"]["spipe"], "-t", tcp_address(free_port()), "-k", str(key)])
    assert proc.wait(timeout=30) != 0


@pytest.mark.parametrize("client,server", SPIPED_PAIRS, ids=[f"{c}-e_to_{s}-d" for c, s in SPIPED_PAIRS])
def test_200_connections_20_at_a_time(procs, key, echo, client, server):
    target = echo()
    entry = start_pair(procs, target.address, key, client, server)

    def one(index):
        payload = os.urandom(1000 + index * 997)
        return transfer(entry, payload) == payload

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, range(200)))
    assert all(results), f"{results.count(False)} of 200 connections lost or corrupted data"
    assert target.connections == 200


def _pair_ids(pairs):
    return [f"{c}-e_to_{s}-d" for c, s in pairs]


@pytest.mark.parametrize("client,server", SPIPED_PAIRS, ids=_pair_ids(SPIPED_PAIRS))
def test_client_half_close_still_receives_whole_reply(procs, key, echo, client, server):
    """The client shuts down its write side first; the target only answers after EOF."""
    reply = os.urandom(3 << 20)

    def answer_after_eof(conn):
        request = b""
        while True:
            data = conn.recv(65536)
            if not data:
                break
            request += data
        assert request == b"question"
        conn.sendall(reply)
        conn.shutdown(socket.SHUT_WR)

    target = echo(handler=answer_after_eof)
    entry = start_pair(procs, target.address, key, client, server)
    assert transfer(entry, b"question") == reply
    assert not target.errors


@pytest.mark.parametrize("client,server", SPIPED_PAIRS, ids=_pair_ids(SPIPED_PAIRS))
def test_target_closes_first_client_sees_eof_after_all_data(procs, key, echo, client, server):
    """The target sends its data and closes while the client's write side is still open."""
    data = os.urandom(3 << 20)

    def speak_and_close(conn):
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        # Keep reading until the client closes, so nothing is reset.
        while conn.recv(65536):
            pass

    target = echo(handler=speak_and_close)
    entry = start_pair(procs, target.address, key, client, server)
    from conftest import connect
    s = connect(entry)
    received = b""
    while True:
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        received += chunk
    assert received == data
    # Our write side still works after the EOF: the forward direction is independent.
    s.sendall(b"still open")
    s.close()
