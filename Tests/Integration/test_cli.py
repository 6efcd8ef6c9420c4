"""Our binaries accept and refuse the same command lines as the reference binaries."""
import subprocess

import pytest

from cli_rows import EXTENSION_ROWS, ROWS, classify
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


@pytest.mark.parametrize("row", EXTENSION_ROWS, ids=[_row_id(r[:2]) for r in EXTENSION_ROWS])
def test_extension_decision(row, spipe_server, tmp_path):
    """This implementation's long options: our decision is the one the row names (the
    reference refuses every such row, checked when reference-decisions.json is generated)."""
    program, args, expected = row
    server_address, key = spipe_server
    source = tcp_address(free_port())
    target = server_address if program == "spipe" else tcp_address(free_port())
    outcome, stderr = classify(BINARIES["ours"][program], program, args, tmp_path, key, source, target,
                               metrics_port=free_port())
    if outcome == "refuse":
        assert stderr.strip(), "refused without a message"
    assert outcome == expected


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


def test_help_and_version_on_standard_output():
    """--help and --version print on stdout and exit 0; -v stays on stderr (as the reference)."""
    for program in ("spiped", "spipe"):
        binary = BINARIES["ours"][program]
        for flag in ("--help", "-h"):
            result = subprocess.run([binary, flag], capture_output=True, text=True, timeout=10)
            assert result.returncode == 0 and result.stderr == ""
            assert f"usage: {program} " in result.stdout
            option_lines = [line for line in result.stdout.splitlines() if line.startswith("  -")]
            assert len(option_lines) >= 10
            for line in option_lines:
                if not line.lstrip().startswith(("-h", "-v", "--version", "-e", "-d")):
                    assert "default" in line or "required" in line, line
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        assert (result.returncode, result.stdout, result.stderr) == (0, f"{program} 1.6.4\n", "")
        result = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=10)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", f"{program} 1.6.4\n")
