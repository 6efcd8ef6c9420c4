"""--syslog: after daemonizing, warnings go to the system log and not to stderr."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BINARIES, THEIR_SPIPED


def namespaces_available():
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not namespaces_available(), reason="needs `unshare -m` (root) for a private /dev/log")
@pytest.mark.parametrize("who", ["ours", "theirs"])
def test_syslog_receives_warnings_after_daemonizing(tmp_path, key, who):
    probe = Path(__file__).with_name("syslog_probe.py")
    result = subprocess.run(["unshare", "-m", sys.executable, str(probe), BINARIES[who]["spiped"], THEIR_SPIPED,
                             str(key), str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["syslog"], "no message reached /dev/log"
    assert "spiped" in report["syslog"][0]
    assert report["stderr"] == "", "warnings still went to stderr"


@pytest.mark.skipif(not namespaces_available(), reason="needs `unshare -m` (root) for a private /dev/log")
def test_syslog_also_applies_in_the_foreground(tmp_path, key):
    """Ours sends warnings to syslog under -F too (the reference ignores --syslog there)."""
    probe = Path(__file__).with_name("syslog_probe.py")
    result = subprocess.run(["unshare", "-m", sys.executable, str(probe), BINARIES["ours"]["spiped"], THEIR_SPIPED,
                             str(key), str(tmp_path), "-F"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["syslog"], "no message reached /dev/log under -F"
    assert report["stderr"] == "", "warnings still went to stderr under -F"
