"""Unix-socket targets: Redis listening only on a Unix socket (`--port 0 --unixsocket`) behind
`spiped -d -t /path/redis.sock`, and an application reaching `spiped -e` through a Unix socket
of its own (`-s /path/app.sock`)."""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import PIPE_COMBINATIONS
from scenario_support import Pipe, RespClient, private_dir, redis_cli, start_redis


@pytest.fixture(scope="module")
def redis_unix_socket(module_processes):
    directory = private_dir("scn-redis-")
    socket_path = directory / "redis.sock"
    start_redis(module_processes, directory, port=0, unix_socket=socket_path)
    yield socket_path
    module_processes.stop_all()
    # spiped and redis leave their socket files behind.
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("combination", PIPE_COMBINATIONS, ids=lambda c: c[0])
@pytest.mark.parametrize("client_side", ["tcp", "unix"])
def test_redis_on_a_unix_socket(combination, client_side, processes, redis_unix_socket,
                                shared_key):
    _, encrypt_binary, decrypt_binary = combination
    client_socket = None
    if client_side == "unix":
        client_socket = redis_unix_socket.parent / f"app-{combination[0]}.sock"
    pipe = Pipe(processes, encrypt_binary, decrypt_binary, str(redis_unix_socket),
                shared_key, shared_key,
                client_source=str(client_socket) if client_socket else None)
    if client_socket is None:
        cli_target = ["-h", "127.0.0.1", "-p", str(pipe.plain_port)]
        connect = {"port": pipe.plain_port}
    else:
        cli_target = ["-s", str(client_socket)]
        connect = {"unix_path": client_socket}

    result = redis_cli(*cli_target, "PING")
    assert result.returncode == 0 and result.stdout.strip() == b"PONG", result

    value = os.urandom(300_000)
    with RespClient(**connect, timeout=30) as client:
        assert client.command("SET", f"unix:{client_side}", value) == "OK"
        assert client.command("GET", f"unix:{client_side}") == value
    # Read back from Redis's own socket, not through the pipe.
    with RespClient(unix_path=redis_unix_socket) as direct:
        assert direct.command("GET", f"unix:{client_side}") == value
    pipe.assert_running()
