"""The seed's story: Redis in data centre B behind `spiped -d`, the application in data
centre A talking to `spiped -e`; neither Redis nor its clients change. Every test runs for
ours→ours, ours -e → reference -d, and reference -e → ours -d.

Data is checked against what Redis itself holds (read straight from its own port, bypassing
the pipe), not against anything spiped reports.
"""

from __future__ import annotations

import hashlib
import os
import re

import pytest

from scenario_support import RespClient, redis_cli, run_redis_benchmark


@pytest.fixture
def direct(redis_port: int):
    """A client on Redis's own port (data centre B's loopback), emptied before each test."""
    with RespClient(redis_port) as client:
        assert client.command("FLUSHALL") == "OK"
        yield client


def test_ping_through_the_pipe(redis_pipe, direct):
    result = redis_cli("-h", "127.0.0.1", "-p", str(redis_pipe.plain_port), "PING")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"PONG"
    with RespClient(redis_pipe.plain_port) as client:
        assert client.command("PING") == "PONG"
        assert client.command("ECHO", "through spiped") == b"through spiped"
    redis_pipe.assert_running()


def test_info_cpu(redis_pipe, direct):
    result = redis_cli("-h", "127.0.0.1", "-p", str(redis_pipe.plain_port), "INFO", "cpu")
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert "# CPU" in text
    assert re.search(r"^used_cpu_sys:[0-9.]+\r?$", text, re.MULTILINE), text
    redis_pipe.assert_running()


def test_set_get_one_megabyte_value(redis_pipe, direct):
    value = os.urandom(1 << 20)
    with RespClient(redis_pipe.plain_port, timeout=30) as client:
        assert client.command("SET", "big", value) == "OK"
        echoed = client.command("GET", "big")
    assert len(echoed) == len(value)
    assert hashlib.sha256(echoed).digest() == hashlib.sha256(value).digest()
    # What Redis stored is exactly what the application sent through the pipe.
    assert direct.command("STRLEN", "big") == 1 << 20
    assert direct.command("GET", "big") == value
    redis_pipe.assert_running()


def test_two_thousand_pipelined_sets(redis_pipe, direct):
    count = 2000
    values = {f"key:{i}": hashlib.sha256(b"%d" % i).hexdigest() * (1 + i % 7)
              for i in range(count)}
    # redis-cli --pipe: the documented way of bulk loading; it streams all commands at once.
    stream = b"".join(RespClient.encode("SET", k, v) for k, v in values.items())
    result = redis_cli("-h", "127.0.0.1", "-p", str(redis_pipe.plain_port), "--pipe",
                       input_bytes=stream, timeout=60)
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output + result.stderr.decode(errors="replace")
    assert re.search(r"errors: 0, replies: 2000\b", output), output
    assert direct.command("DBSIZE") == count
    # And read them back pipelined over a raw socket through the pipe: 2000 GETs in one write.
    with RespClient(redis_pipe.plain_port, timeout=30) as client:
        client.sock.sendall(b"".join(RespClient.encode("GET", k) for k in values))
        replies = [client.read_reply() for _ in values]
    assert replies == [v.encode() for v in values.values()]
    redis_pipe.assert_running()


def test_redis_benchmark_without_errors(redis_pipe, direct, request):
    rates = run_redis_benchmark(redis_pipe.plain_port, clients=50, requests=20000)
    print(f"\n{request.node.callspec.id}: SET {rates['SET']:.0f} req/s, "
          f"GET {rates['GET']:.0f} req/s")
    # The SETs reached the real Redis (without -r redis-benchmark writes the literal key
    # `key:__rand_int__`).
    assert direct.command("EXISTS", "key:__rand_int__") == 1
    redis_pipe.assert_running()
