"""Our binaries accept and refuse the same command lines as the reference binaries."""
import subprocess

import pytest

from cli_rows import ROWS, classify
from conftest import BINARIES, EchoServer, free_port, is_listening, tcp_address, wait_until


@pytest.fixture(scope="module")
def spipe_server(tmp_path_factory):
    """A reference spiped -d in front of an echo server, for the spipe rows."""
    directory = tmp_path_factory.mktemp("spipe-server")
    key = directory / "key"
    key.write_bytes(bytes(range(32)))
    key.chmod(0o600)
    echo = EchoServer(tcp_address(free_port()))
    address = tcp_address(free_port())
    proc = subprocess.Popen([BINARIES["theirs"]["spiped"], "-d", "-s", address, "-t", echo.address, "-k", str(key), "-F"])
    try:
        wait_until(lambda: is_listening(address), what="reference spiped -d")
        yield address, key
    finally:
        proc.kill()
        proc.wait()
        echo.close()


def _row_id(row):
    program, args = row
    return program + " " + " ".join(repr(a) for a in args)


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
def test_same_decision_as_reference(row, spipe_server, tmp_path):
    program, args = row
    server_address, key = spipe_server
    outcomes = {}
    for who in ("theirs", "ours"):
        source = tcp_address(free_port())
        target = server_address if program == "spipe" else tcp_address(free_port())
        outcomes[who], stderr = classify(BINARIES[who][program], program, args, tmp_path, key, source, target)
        if outcomes[who] == "refuse":
            assert stderr.strip(), f"{who} refused without a message"
    assert outcomes["ours"] == outcomes["theirs"]


RUNTIME_REFUSALS = {
    "missing key file": ["-k", "@DIR@/no-such-key"],
    "key file is a directory": ["-k", "@DIR@"],
    "unresolvable target": ["-t", "no-such-host.invalid:80"],
    "unknown user": ["-u", "no-such-user-xyz"],
    "unknown group": ["-u", ":no-such-group-xyz"],
    "source already in use": ["-s", "@BUSY@"],
    "source directory missing": ["-s", "@DIR@/no/such/dir/sock"],
}


@pytest.mark.parametrize("name", list(RUNTIME_REFUSALS))
@pytest.mark.parametrize("who", ["theirs", "ours"])
def test_runtime_refusals(procs, tmp_path, key, name, who):
    """Errors found after parsing (key, resolution, bind, -u) exit non-zero with a message."""
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    values = {"-s": tcp_address(free_port()), "-t": tcp_address(free_port()), "-k": str(key)}
    override = RUNTIME_REFUSALS[name]
    values[override[0]] = override[1].replace("@DIR@", str(tmp_path)).replace(
        "@BUSY@", tcp_address(busy.getsockname()[1]))
    argv = [BINARIES[who]["spiped"], "-e", "-F"]
    if "-u" in values:
        argv += ["-u", values.pop("-u")]
    for option, value in values.items():
        argv += [option, value]
    proc = procs.start(argv)
    try:
        code = proc.wait(timeout=20)
    finally:
        busy.close()
    assert code != 0
    assert proc.stderr_text().strip()


def test_version(tmp_path):
    for program in ("spiped", "spipe"):
        result = subprocess.run([BINARIES["ours"][program], "-v"], capture_output=True, text=True, timeout=10)
        assert result.returncode == 0
        assert result.stderr.startswith(program + " 1.6")
