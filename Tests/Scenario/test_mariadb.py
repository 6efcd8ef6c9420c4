"""The homework: the same set-up with MySQL/MariaDB. The server (one per test session) listens
on 127.0.0.1; `spiped -d` sits in front of it and the unchanged `mariadb` client connects to
`spiped -e`. Row data is checked against checksums computed here in Python."""

from __future__ import annotations

import hashlib
import time
import zlib

import pytest

from conftest import OUR_SPIPED, PIPE_COMBINATIONS, REF_SPIPED
from scenario_support import (
    SPIPED_TIMEOUT_SECONDS, Pipe, ProcessGroup, free_tcp_port, start_spiped, tcp_address)

ROW_COUNT = 20000


def row_payload(row_id: int) -> str:
    """Deterministic text of varying length (8 to 71 characters) for row `row_id`."""
    return hashlib.sha256(b"row %d" % row_id).hexdigest()[: 8 + row_id % 57] + f"-{row_id}"


@pytest.fixture(scope="module", params=PIPE_COMBINATIONS, ids=lambda c: c[0])
def mariadb_pipe(request, session_dir, mariadb, shared_key):
    _, encrypt_binary, decrypt_binary = request.param
    group = ProcessGroup(session_dir)
    try:
        yield Pipe(group, encrypt_binary, decrypt_binary, tcp_address(mariadb.port),
                   shared_key, shared_key)
    finally:
        group.stop_all()


def test_twenty_thousand_rows_through_the_pipe(mariadb_pipe, mariadb, request):
    table = "rows_" + request.node.callspec.id.replace("-", "_")
    values = ",".join(f"({i},'{row_payload(i)}')" for i in range(1, ROW_COUNT + 1))
    script = (f"DROP TABLE IF EXISTS {table};\n"
              f"CREATE TABLE {table} (id INT PRIMARY KEY, payload VARCHAR(80) NOT NULL)"
              f" ENGINE=InnoDB;\n"
              f"INSERT INTO {table} (id, payload) VALUES {values};\n")
    result = mariadb.client(mariadb_pipe.plain_port, "", input_bytes=script.encode())
    assert result.returncode == 0, result.stderr.decode(errors="replace")

    # Aggregates computed by the server, compared with the same sums computed here.
    expected_crc_sum = sum(zlib.crc32(row_payload(i).encode())
                           for i in range(1, ROW_COUNT + 1))
    result = mariadb.client(mariadb_pipe.plain_port,
                            f"SELECT COUNT(*), SUM(id), SUM(CRC32(payload)) FROM {table}")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    count, id_sum, crc_sum = (int(x) for x in result.stdout.split())
    assert count == ROW_COUNT
    assert id_sum == ROW_COUNT * (ROW_COUNT + 1) // 2
    assert crc_sum == expected_crc_sum

    # Every row read back through the pipe, byte for byte.
    result = mariadb.client(mariadb_pipe.plain_port,
                            f"SELECT id, payload FROM {table} ORDER BY id")
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    expected = "".join(f"{i}\t{row_payload(i)}\n" for i in range(1, ROW_COUNT + 1)).encode()
    assert hashlib.sha256(result.stdout).hexdigest() == hashlib.sha256(expected).hexdigest()

    # The server itself, asked over its own Unix socket, holds the same rows.
    assert mariadb.admin_sql(f"SELECT COUNT(*) FROM {mariadb.database}.{table}").strip() \
        == str(ROW_COUNT)
    mariadb_pipe.assert_running()


@pytest.mark.parametrize("decrypt_binary", [OUR_SPIPED, REF_SPIPED], ids=["ours-d", "ref-d"])
def test_mariadb_client_on_encrypted_port_fails(decrypt_binary, processes, mariadb, shared_key):
    port = free_tcp_port()
    decrypt = start_spiped(processes, decrypt_binary, "-d", tcp_address(port),
                           tcp_address(mariadb.port), shared_key, f"lonely-d-{port}")
    limit = SPIPED_TIMEOUT_SECONDS + 2
    start = time.monotonic()
    result = mariadb.client(port, "SELECT 'reached the server'", timeout=limit + 10)
    seconds = time.monotonic() - start
    assert result.returncode != 0, result.stdout
    assert b"reached the server" not in result.stdout
    assert seconds < limit, f"the mariadb client took {seconds:.2f} s to give up"
    decrypt.assert_running()
