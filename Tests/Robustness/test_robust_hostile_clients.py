"""Hostile clients on spiped's ports: garbage, plain HTTP, slowloris, idle-connection floods.
Each test ends by proving the process still serves a good client."""
import os
import time

import pytest

from robust_harness import TESTING_THE_REFERENCE, connect, echo_round_trip, read_until_closed


def flood(port, count):
    """Opens `count` idle connections; once the daemon stops accepting (at -n) and its listen
    backlog is full, the kernel drops further SYNs, so those attempts are abandoned after a
    quarter second (still pending in the kernel's queue they cost the daemon nothing)."""
    opened = []
    for _ in range(count):
        try:
            opened.append(connect(port, timeout=0.25))
        except OSError:
            pass
    assert len(opened) >= 10, f"only {len(opened)} connections could be opened"
    return opened


@pytest.mark.parametrize("payload", [
    pytest.param(os.urandom(4096), id="random-garbage"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: example.org\r\nUser-Agent: robustness\r\n\r\n", id="http-request"),
    pytest.param(b"\x00" * 32 + b"\x00" * 255 + b"\x01" + b"\x00" * 32, id="zero-nonce-y1-bad-mac"),
])
def test_junk_on_encrypted_port_is_closed_and_never_forwarded(pipe, payload):
    encrypt, decrypt, target = pipe(d_extra=["-o", "2"])
    started = time.monotonic()
    with connect(decrypt.source_port) as sock:
        sock.sendall(payload)
        data, how = read_until_closed(sock, timeout=10)
    elapsed = time.monotonic() - started
    assert how in ("eof", "reset"), "spiped -d kept a junk connection open for 10 s"
    # A short request stalls in the handshake and is cut by -o 2; garbage fails the MAC at once.
    assert elapsed < 6, f"junk connection closed only after {elapsed:.1f}s"
    # What -d may send back is at most its own half of the handshake (nonce, DH value, MAC).
    assert len(data) <= 320, f"spiped -d sent {len(data)} bytes to a junk client"
    time.sleep(0.2)
    assert target.total_received() == 0, "junk reached the target service"
    if not TESTING_THE_REFERENCE:
        # Ours connects to the target only after a successful handshake (the reference
        # connects while the handshake runs).
        assert target.connections == 0, "spiped -d connected to the target for a junk client"
    decrypt.assert_running()
    echo_round_trip(encrypt.source_port)
    assert target.total_received() > 0


def test_slowloris_handshake_is_cut_at_the_timeout(pipe):
    encrypt, decrypt, target = pipe(d_extra=["-o", "2"])
    with connect(decrypt.source_port) as sock:
        started = time.monotonic()
        sock.settimeout(0.05)
        closed_after = None
        payload = os.urandom(64)
        for index in range(12):              # one byte a second, for up to 12 s
            try:
                sock.sendall(payload[index:index + 1])
                if sock.recv(4096) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
            except OSError:
                closed_after = time.monotonic() - started
                break
            time.sleep(1)
        if closed_after is None:
            _, how = read_until_closed(sock, timeout=1)
            if how != "timeout":
                closed_after = time.monotonic() - started
    assert closed_after is not None, "a client sending one byte a second was never cut"
    assert closed_after < 5, f"slowloris client cut only after {closed_after:.1f}s (-o 2)"
    assert target.total_received() == 0
    decrypt.assert_running()
    echo_round_trip(encrypt.source_port)


def test_idle_flood_on_encrypted_port_beyond_connection_limit(pipe):
    """-n 10, 30 idle connections to -d: the handshake timeout clears them in waves; the
    process keeps running and serves a good client afterwards."""
    encrypt, decrypt, target = pipe(d_extra=["-o", "2", "-n", "10"])
    idle = flood(decrypt.source_port, 30)
    try:
        deadline = time.monotonic() + 20
        for sock in idle:
            _, how = read_until_closed(sock, timeout=max(0.1, deadline - time.monotonic()))
            assert how != "timeout", "idle connections were not all timed out within 20 s"
            decrypt.assert_running()
    finally:
        for sock in idle:
            sock.close()
    assert target.total_received() == 0
    echo_round_trip(encrypt.source_port)


def test_idle_flood_on_plaintext_port_beyond_connection_limit(pipe):
    """-n 10 on -e, 30 idle plaintext clients (each completes a handshake, then idles): the
    process keeps running, and serves a good client once the idle ones go away."""
    encrypt, decrypt, target = pipe(e_extra=["-n", "10"])
    idle = flood(encrypt.source_port, 30)
    try:
        time.sleep(1.5)
        encrypt.assert_running()
        decrypt.assert_running()
    finally:
        for sock in idle:
            sock.close()
    time.sleep(0.5)
    echo_round_trip(encrypt.source_port)
    encrypt.assert_running()
