"""What happens when something skips the pipe or holds the wrong key: the encrypted port never
answers a plaintext client and closes its connection within the -o timeout; a client end with
a different key gets nothing through. These also prove the harness notices a broken pipe.
"""

from __future__ import annotations

import time

import pytest

from conftest import OUR_SPIPED, PIPE_COMBINATIONS, REF_SPIPED
from scenario_support import (
    SPIPED_TIMEOUT_SECONDS, Pipe, RespClient, assert_redis_ping, free_tcp_port,
    probe_with_plaintext, redis_cli, run_redis_benchmark, start_spiped, tcp_address)

DECRYPTORS = [("ours-d", OUR_SPIPED), ("ref-d", REF_SPIPED)]
# A plaintext client must be dropped within the handshake timeout plus a little slack.
CLOSE_LIMIT = SPIPED_TIMEOUT_SECONDS + 2


def ping_calls(redis_port: int) -> int:
    """How many PING commands Redis has executed, read from Redis itself."""
    with RespClient(redis_port) as client:
        stats = client.command("INFO", "commandstats").decode()
    for line in stats.splitlines():
        if line.startswith("cmdstat_ping:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


@pytest.fixture(params=DECRYPTORS, ids=lambda d: d[0])
def decrypt_port(request, processes, redis_port, shared_key) -> int:
    """The encrypted port: an spiped -d in front of Redis, with nobody encrypting for it."""
    port = free_tcp_port()
    process = start_spiped(processes, request.param[1], "-d", tcp_address(port),
                           tcp_address(redis_port), shared_key, f"lonely-d-{port}")
    yield port
    process.assert_running()


@pytest.mark.parametrize("payload", [b"PING\r\n", b"", b"*1\r\n$4\r\nPING\r\n" * 200],
                         ids=["inline-ping", "silent", "pipelined-pings"])
def test_plaintext_client_on_encrypted_port_is_dropped(decrypt_port, redis_port, payload):
    pings_before = ping_calls(redis_port)
    received, seconds, how = probe_with_plaintext(decrypt_port, payload, limit=CLOSE_LIMIT)
    assert b"PONG" not in received
    # All it may see is the server's 32-byte handshake nonce, never a Redis reply.
    assert len(received) <= 32, f"{len(received)} bytes came back: {received[:80]!r}"
    assert seconds < CLOSE_LIMIT, f"closed after {seconds:.2f} s ({how})"
    assert ping_calls(redis_port) == pings_before, "a plaintext PING reached Redis"


def test_redis_cli_on_encrypted_port_fails(decrypt_port, redis_port):
    pings_before = ping_calls(redis_port)
    start = time.monotonic()
    result = redis_cli("-h", "127.0.0.1", "-p", str(decrypt_port), "PING",
                       timeout=CLOSE_LIMIT + 5)
    seconds = time.monotonic() - start
    assert b"PONG" not in result.stdout
    assert result.returncode != 0 or b"Error" in result.stdout + result.stderr, result
    assert seconds < CLOSE_LIMIT, f"redis-cli took {seconds:.2f} s"
    assert ping_calls(redis_port) == pings_before


@pytest.mark.parametrize("combination", PIPE_COMBINATIONS, ids=lambda c: c[0])
def test_client_end_with_a_different_key_gets_nothing_through(combination, processes,
                                                             redis_port, shared_key, wrong_key):
    _, encrypt_binary, decrypt_binary = combination
    pipe = Pipe(processes, encrypt_binary, decrypt_binary, tcp_address(redis_port),
                encrypt_key=wrong_key, decrypt_key=shared_key)
    pings_before = ping_calls(redis_port)
    # The harness's own success check must fail here...
    with pytest.raises(AssertionError):
        assert_redis_ping(pipe.plain_port)
    # ...and a raw client sees its connection closed (no reply) within the timeout.
    received, seconds, _ = probe_with_plaintext(pipe.plain_port, b"PING\r\n", CLOSE_LIMIT)
    assert received == b"" and seconds < CLOSE_LIMIT
    assert ping_calls(redis_port) == pings_before
    # Both processes survive the failed handshakes.
    pipe.assert_running()


def test_benchmark_check_fails_on_a_broken_pipe(processes, redis_port, shared_key, wrong_key):
    """The redis-benchmark check must not pass when nothing gets through."""
    pipe = Pipe(processes, OUR_SPIPED, OUR_SPIPED, tcp_address(redis_port),
                encrypt_key=wrong_key, decrypt_key=shared_key)
    with pytest.raises(AssertionError):
        run_redis_benchmark(pipe.plain_port, clients=2, requests=100, timeout=10)
