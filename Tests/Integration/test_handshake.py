"""Handshake options and keys: the -f/-g matrix and wrong keys."""
import os
import socket

import pytest

from conftest import BINARIES, connect, free_port, tcp_address
from test_interop import start_pair

FLAGS = {"plain": (), "f": ("-f",), "g": ("-g",)}


def exchange(address, message=b"ping", timeout=10):
    """Sends one message and half-closes; returns the reply (b"" when the pipe was refused)."""
    s = connect(address, timeout=timeout)
    try:
        s.sendall(message)
        s.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return received
            received += chunk
    except OSError:  # reset, broken pipe, or not connected any more: the pipe was refused
        return b""
    finally:
        s.close()


MATRIX = [(client, server, who) for client in FLAGS for server in FLAGS
          for who in [("ours", "theirs"), ("theirs", "ours")]]


@pytest.mark.parametrize("client_flags,server_flags,who", MATRIX,
                         ids=[f"e{c}-{w[0]}_d{s}-{w[1]}" for c, s, w in MATRIX])
def test_fast_and_forward_secrecy_matrix(procs, key, echo, client_flags, server_flags, who):
    target = echo()
    entry = start_pair(procs, target.address, key, who[0], who[1],
                       client_flags=FLAGS[client_flags], server_flags=FLAGS[server_flags])
    # A -g side refuses a -f peer, in either role; everything else works.
    refused = (client_flags, server_flags) in [("f", "g"), ("g", "f")]
    reply = exchange(entry)
    if refused:
        assert reply == b""
    else:
        assert reply == b"ping"


@pytest.mark.parametrize("who", [("theirs", "ours"), ("ours", "theirs"), ("ours", "ours")],
                         ids=["theirs-e_to_ours-d", "ours-e_to_theirs-d", "ours-e_to_ours-d"])
def test_wrong_key_refused_and_next_good_client_served(procs, key, other_key, echo, who):
    client, server = who
    target = echo()
    server_address = tcp_address(free_port())
    procs.spiped(BINARIES[server]["spiped"], "-d", server_address, target.address, key)
    bad_entry = tcp_address(free_port())
    procs.spiped(BINARIES[client]["spiped"], "-e", bad_entry, server_address, other_key)
    good_entry = tcp_address(free_port())
    procs.spiped(BINARIES[client]["spiped"], "-e", good_entry, server_address, key)
    assert exchange(bad_entry) == b""
    assert exchange(good_entry, b"hello" * 1000) == b"hello" * 1000
    assert exchange(bad_entry) == b""
    assert exchange(good_entry) == b"ping"
