"""Faults around the pipe: a client that resets mid-transfer, a target that is down or never
reads, SIGTERM during a transfer, and file-descriptor exhaustion. Each test (but SIGTERM, whose
process is meant to exit) ends by proving the process still serves a good client."""
import hashlib
import os
import signal
import socket
import threading
import time

import pytest

from robust_harness import (TESTING_THE_REFERENCE, TargetServer, connect, echo_round_trip, eventually_serves, free_port,
                            open_fd_count, read_until_closed, reset_close, rss_kib, wait_until)


def test_client_reset_mid_transfer(pipe):
    encrypt, decrypt, target = pipe()
    sock = connect(encrypt.source_port)
    sock.sendall(os.urandom(300_000))
    wait_until(lambda: target.total_received() > 0, timeout=10, what="data at the target")
    reset_close(sock)   # RST while data is in flight both ways (the target echoes)
    wait_until(lambda: target.ended[0].is_set(), timeout=10,
               what="the target connection to close after the client's reset")
    encrypt.assert_running()
    decrypt.assert_running()
    echo_round_trip(encrypt.source_port)


def test_target_down_closes_cleanly_and_recovers(daemons, key):
    target_port = free_port()      # nothing listens here yet
    decrypt = daemons("-d", free_port(), target_port, key, "-o", "2")
    encrypt = daemons("-e", free_port(), decrypt.source_port, key, "-o", "2")
    for _ in range(3):
        with connect(encrypt.source_port) as sock:
            try:
                sock.sendall(b"hello, is anybody there?")
            except OSError:
                pass
            data, how = read_until_closed(sock, timeout=8)
        assert how in ("eof", "reset"), "connection to a dead target was left hanging"
        assert data == b"", "bytes came back from a target that does not exist"
    decrypt.assert_running()
    encrypt.assert_running()
    target = TargetServer("echo", port=target_port)
    try:
        echo_round_trip(encrypt.source_port)
    finally:
        target.close()


def test_target_that_never_reads_holds_the_client_back_with_bounded_memory(pipe):
    """200 MB towards a target that accepts and never reads: spiped must not buffer it; the
    client is held back by TCP flow control and both processes stay under 64 MB RSS."""
    encrypt, decrypt, target = pipe(behaviour="stall")
    limit_kib = 64 * 1024
    sock = connect(encrypt.source_port)
    sock.settimeout(0.5)
    chunk = os.urandom(1 << 16)
    sent = 0
    stalled_for = 0.0
    peak = {"e": 0, "d": 0}
    started = time.monotonic()
    while sent < 200 * 1024 * 1024 and time.monotonic() - started < 60:
        try:
            sent += sock.send(chunk)
            stalled_for = 0.0
        except (TimeoutError, socket.timeout):
            stalled_for += 0.5
            if stalled_for >= 3:
                break
        for name, daemon in (("e", encrypt), ("d", decrypt)):
            peak[name] = max(peak[name], rss_kib(daemon.pid) or 0)
    for name, daemon in (("e", encrypt), ("d", decrypt)):
        peak[name] = max(peak[name], rss_kib(daemon.pid) or 0)
    assert stalled_for >= 3, f"client sent {sent >> 20} MB without being held back"
    assert sent < 150 * 1024 * 1024, f"{sent >> 20} MB went into a target that never reads"
    assert peak["e"] < limit_kib and peak["d"] < limit_kib, \
        f"RSS peaked at -e {peak['e'] >> 10} MB, -d {peak['d'] >> 10} MB after {sent >> 20} MB sent"
    reset_close(sock)
    encrypt.assert_running()
    decrypt.assert_running()
    # A target that never reads cannot echo: hand its port to an echo server for the good client.
    target.close()
    echo = TargetServer("echo", port=target.port)
    try:
        echo_round_trip(encrypt.source_port)
    finally:
        echo.close()


def test_sigterm_during_transfer_finishes_it_then_exits(pipe):
    encrypt, decrypt, target = pipe()
    payload = os.urandom(20 * 1024 * 1024)
    sock = connect(encrypt.source_port, timeout=30)
    reply = bytearray()
    outcome = []

    def reader():
        data, how = read_until_closed(sock, timeout=60)
        reply.extend(data)
        outcome.append(how)

    thread = threading.Thread(target=reader)
    thread.start()
    view = memoryview(payload)
    signalled = False
    for offset in range(0, len(view), 1 << 16):
        sock.sendall(view[offset:offset + (1 << 16)])
        if not signalled and offset >= len(view) // 4:
            for daemon in (decrypt, encrypt):
                daemon.process.send_signal(signal.SIGTERM)
            signalled = True
    # After SIGTERM no new client is served: ours refuses it at once (the listener is shut
    # down); the reference leaves it unaccepted in the backlog (or serves it, 1.6.2).
    time.sleep(0.5)
    late = _late_client(encrypt.source_port)
    time.sleep(1.0)
    if not TESTING_THE_REFERENCE:   # the reference 1.6.2 still serves it
        assert target.connections == 1, "a client arriving after SIGTERM was served"
        assert late is None, "a client arriving after SIGTERM was not refused"
    assert encrypt.process.poll() is None and decrypt.process.poll() is None, \
        "spiped exited with a transfer still in progress"
    sock.shutdown(socket.SHUT_WR)
    thread.join(90)
    sock.close()
    assert outcome == ["eof"], f"transfer ended by {outcome}"
    assert hashlib.sha256(reply).digest() == hashlib.sha256(payload).digest(), \
        f"echoed {len(reply)} of {len(payload)} bytes, or different bytes"
    if late is not None:
        late.close()
    for daemon in (encrypt, decrypt):
        try:
            status = daemon.process.wait(timeout=10)
        except Exception:
            raise AssertionError("spiped did not exit after its last connection closed") from None
        assert status == 0, f"spiped exited with status {status} after SIGTERM: {daemon.stderr()}"


def _late_client(port):
    """Connects and sends a line; returns the socket (None when the connection was refused)."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        sock.sendall(b"arrived after SIGTERM\n")
        return sock
    except OSError:
        return None


def _exhaust(port, count):
    """Opens up to `count` clients (some may be refused or dropped); returns the sockets."""
    opened = []
    for _ in range(count):
        try:
            sock = connect(port, timeout=0.25)
            sock.sendall(b"x")
            opened.append(sock)
        except OSError:
            pass
    return opened


@pytest.mark.beyond_reference
def test_file_descriptor_exhaustion_on_plaintext_side(pipe):
    """-e with RLIMIT_NOFILE 32 and no connection limit, 60 clients: accept or connect fails
    with EMFILE; the process survives, and serves again once the clients go away (a good
    client may be turned away while the daemon drains its backlog, so it retries for 20 s)."""
    encrypt, decrypt, target = pipe(e_extra=["-n", "0"], e_limit_fds=32)
    baseline = open_fd_count(encrypt.pid)
    clients = _exhaust(encrypt.source_port, 60)
    time.sleep(1.0)
    encrypt.assert_running()
    assert open_fd_count(encrypt.pid) <= 32
    for sock in clients:
        sock.close()
    wait_until(lambda: open_fd_count(encrypt.pid) <= baseline + 2, timeout=15,
               what="-e to release the descriptors of closed clients")
    eventually_serves(encrypt.source_port)
    encrypt.assert_running()


@pytest.mark.beyond_reference
def test_file_descriptor_exhaustion_on_encrypted_side(pipe):
    """-d with RLIMIT_NOFILE 32 and no connection limit, 60 plaintext clients through an
    unlimited -e: the -d survives, and serves again afterwards."""
    encrypt, decrypt, target = pipe(d_extra=["-n", "0"], d_limit_fds=32)
    baseline = open_fd_count(decrypt.pid)
    clients = _exhaust(encrypt.source_port, 60)
    time.sleep(1.5)
    decrypt.assert_running()
    for sock in clients:
        sock.close()
    wait_until(lambda: open_fd_count(decrypt.pid) <= baseline + 2, timeout=15,
               what="-d to release the descriptors of closed clients")
    eventually_serves(encrypt.source_port)
    decrypt.assert_running()
