"""scripts/demo is the README's first command: it must run to the end and exit 0, with Redis
and with its built-in echo server, using the spiped under test (SPIPED skips the build)."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import OUR_SPIPED
from scenario_support import REPO_ROOT, find_program


@pytest.mark.parametrize("target", ["redis", "echo"])
def test_demo_runs_to_the_end(target):
    if target == "redis" and find_program("redis-server") is None:
        pytest.fail("redis-server is not installed", pytrace=False)
    environment = dict(os.environ, SPIPED=str(OUR_SPIPED))
    if target == "echo":
        environment["DEMO_TARGET"] = "echo"
    result = subprocess.run([str(REPO_ROOT / "scripts" / "demo")], env=environment,
                            capture_output=True, timeout=120, cwd="/")
    output = result.stdout.decode(errors="replace")
    assert result.returncode == 0, output + result.stderr.decode(errors="replace")
    assert "Demo finished" in output
    assert f"+ {OUR_SPIPED} -d -F -s" in output, "the demo must print the commands it runs"
    if target == "redis":
        assert "\nPONG\n" in output and "\nhello through spiped\n" in output
    else:
        assert "using the echo server" in output and "\nhello through spiped\n" in output
    assert "no 'PONG'" in output or "no 'hello'" in output
