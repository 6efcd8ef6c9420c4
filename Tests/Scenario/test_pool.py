"""Pre-established pipes (`spiped -e --pool N`): Redis and MariaDB through a pooled pipe, with
our `-d` and with Debian's at the other end; pooled connections that waited (MariaDB's greeting
waiting in the pipe), ones the far side closed, and ones past --pool-max-age.

The pool is per process; these tests look at its counters on --metrics."""

from __future__ import annotations

import re
import signal
import socket
import time
import urllib.request

import pytest

from conftest import OUR_SPIPED, REF_SPIPED
from scenario_support import (ProcessGroup, RespClient, free_tcp_port, start_spiped,
                              start_spiped_on_free_port, tcp_address)

DECRYPT_ENDS = [pytest.param(OUR_SPIPED, id="ours-d"), pytest.param(REF_SPIPED, id="debian-d")]


def metric(port: int, name: str) -> float:
    """The value of a single-sample family from our --metrics endpoint."""
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = [float(m.group(1)) for m in re.finditer(rf"^{name}{{[^}}]*}} (\S+)$", body, re.M)]
    assert len(values) == 1, f"{name}: {values}\n{body[-2000:]}"
    return values[0]


def wait_for(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def pooled_pipe(group: ProcessGroup, decrypt_binary, target: str, key, pool: int, max_age: float):
    """`spiped -d` (ours or Debian's) in front of `target`, and our `spiped -e --pool` in front
    of it with --metrics; returns (plaintext port, metrics port, -e process, -d process)."""
    encrypted_port, decrypt = start_spiped_on_free_port(group, decrypt_binary, "-d", target, key, "pool-d")
    plain_port, metrics_port = free_tcp_port(), free_tcp_port()
    encrypt = start_spiped(group, OUR_SPIPED, "-e", tcp_address(plain_port), tcp_address(encrypted_port), key,
                           f"pool-e-{plain_port}",
                           ["--pool", str(pool), "--pool-max-age", str(max_age), "--metrics", tcp_address(metrics_port)])
    wait_for(lambda: metric(metrics_port, "spiped_pool_connections") == pool, f"{pool} pooled connections")
    return plain_port, metrics_port, encrypt, decrypt


@pytest.mark.parametrize("decrypt_binary", DECRYPT_ENDS)
def test_redis_through_a_pooled_pipe(processes, redis_port, shared_key, decrypt_binary):
    """Fresh Redis connections each take a pooled connection (hits), the pool is refilled, and
    every pooled connection serves exactly one client."""
    plain_port, metrics_port, encrypt, _ = pooled_pipe(processes, decrypt_binary, tcp_address(redis_port),
                                                    shared_key, pool=4, max_age=30)
    for index in range(20):
        with RespClient(port=plain_port) as client:
            assert client.command("SET", f"pool:{index}", str(index)) == "OK"
            assert client.command("GET", f"pool:{index}") == str(index).encode()
        time.sleep(0.05)     # refills keep up with one connection per 50 ms
    hits = metric(metrics_port, "spiped_pool_hits_total")
    misses = metric(metrics_port, "spiped_pool_misses_total")
    assert hits + misses == 20
    assert hits >= 15, f"only {hits} of 20 connections found a pooled connection"
    wait_for(lambda: metric(metrics_port, "spiped_pool_connections") == 4, "the pool refilled")
    # One pooled connection is one client: Redis saw a distinct client per connection.
    with RespClient(port=redis_port) as admin:
        clients = admin.command("CLIENT", "LIST").decode().splitlines()
    assert len(clients) == 1 + 4, f"Redis holds {len(clients)} connections: the admin one and the 4 pooled"
    encrypt.assert_running()


@pytest.mark.parametrize("decrypt_binary", DECRYPT_ENDS)
def test_mariadb_through_a_pooled_pipe_with_old_pooled_connections(processes, mariadb, shared_key, decrypt_binary):
    """MariaDB speaks first: its greeting waits in the pooled pipe. A pooled connection that
    waited (2 s here) still serves a client, and queries return the right rows."""
    plain_port, metrics_port, encrypt, _ = pooled_pipe(processes, decrypt_binary, tcp_address(mariadb.port),
                                                    shared_key, pool=2, max_age=8)
    time.sleep(2.0)
    for _ in range(3):
        result = mariadb.client(plain_port, "SELECT 6 * 7, CONNECTION_ID()")
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert result.stdout.split()[0] == b"42"
    assert metric(metrics_port, "spiped_pool_hits_total") >= 2
    encrypt.assert_running()


def test_pooled_connections_past_their_age_and_closed_by_the_far_side_are_replaced(processes, redis_port, shared_key):
    """--pool-max-age 1: idle pooled connections are discarded and replaced; and when the far
    side closes them (its target restarts, or Redis kills idle clients), they are dropped before
    any client gets one."""
    plain_port, metrics_port, encrypt, _ = pooled_pipe(processes, OUR_SPIPED, tcp_address(redis_port),
                                                    shared_key, pool=3, max_age=1)
    wait_for(lambda: metric(metrics_port, "spiped_pool_discarded_total") >= 3, "aged pooled connections replaced")
    wait_for(lambda: metric(metrics_port, "spiped_pool_connections") == 3, "the pool refilled")
    # The far side: Redis closes every client connection; the pooled ones end with them.
    discarded = metric(metrics_port, "spiped_pool_discarded_total")
    with RespClient(port=redis_port) as admin:
        admin.command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    wait_for(lambda: metric(metrics_port, "spiped_pool_discarded_total") >= discarded + 3,
             "pooled connections closed by the far side dropped", timeout=5)
    # And nobody gets a dead one: every client right after is served.
    for index in range(6):
        with RespClient(port=plain_port) as client:
            assert client.command("PING") == "PONG"
    encrypt.assert_running()


def test_an_empty_pool_falls_back_to_connecting_on_demand(processes, redis_port, shared_key):
    """A burst larger than the pool: the rest connect on demand (misses), all are served.

    The -d is stopped (SIGSTOP) during the burst, so no refill can finish its handshake and the
    burst cannot be served from refills however slowly the clients arrive; its kernel still
    accepts the TCP connections, and everything proceeds once it continues."""
    plain_port, metrics_port, _, decrypt = pooled_pipe(processes, OUR_SPIPED, tcp_address(redis_port), shared_key,
                                                       pool=2, max_age=30)
    clients = []
    decrypt.popen.send_signal(signal.SIGSTOP)
    try:
        clients = [RespClient(port=plain_port) for _ in range(8)]
        wait_for(lambda: metric(metrics_port, "spiped_pool_hits_total") + metric(metrics_port, "spiped_pool_misses_total") == 8,
                 "8 clients accepted", timeout=5)
    finally:
        decrypt.popen.send_signal(signal.SIGCONT)
    try:
        for client in clients:
            assert client.command("PING") == "PONG"
    finally:
        for client in clients:
            client.close()
    hits, misses = metric(metrics_port, "spiped_pool_hits_total"), metric(metrics_port, "spiped_pool_misses_total")
    # The pool is spread over the event loops and a client takes one from the loop that
    # accepted it: a burst that lands on one loop finds one there, so one hit or two, and the
    # rest (6 or 7) connected on demand.
    assert 1 <= hits <= 2 and hits + misses == 8, (hits, misses)
