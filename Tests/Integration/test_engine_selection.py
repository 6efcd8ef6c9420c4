"""Crypto engines chosen by measurement, and the environment variables that force them.

`spiped-bench engines` prints the selection's report (every engine of every primitive: usable
here or why not, its start-up rate, the one in use marked *); spiped logs the same at debug
level when it starts, and warns about a bad SPIPED_CRYPTO_ENGINE. Each check runs a new
process, since the choice is made once per process.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import OUR_SPIPED, free_port, kill_and_reap, tcp_address, wait_until, is_listening, write_key

BENCH = str(Path(OUR_SPIPED).with_name("spiped-bench"))


def cpu_flags():
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def engines(**environment):
    env = {k: v for k, v in os.environ.items() if k not in ("SPIPED_FORCE_PORTABLE", "SPIPED_CRYPTO_ENGINE")}
    env.update(environment)
    result = subprocess.run([BENCH, "engines"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = {}
    for line in result.stdout.splitlines():
        match = re.match(r"(SHA-256|AES-256|DH)\s+(\S+)\s+(\S+(?: \S+/s)?)\s+(.*)$", line)
        if match:
            rows[(match.group(1), match.group(2))] = (match.group(3), match.group(4))
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    return rows, problems


def used(rows, primitive):
    chosen = [name for (kind, name), (_, verdict) in rows.items() if kind == primitive and verdict.startswith("used")]
    assert len(chosen) == 1, rows
    return chosen[0]


pytestmark = pytest.mark.skipif(not os.access(BENCH, os.X_OK), reason=f"{BENCH} not built")


def test_default_choice_is_measured_and_usable():
    rows, problems = engines()
    assert not problems
    flags = cpu_flags()
    for primitive in ("SHA-256", "AES-256", "DH"):
        winner = used(rows, primitive)
        usable = {name: rate for (kind, name), (rate, verdict) in rows.items()
                  if kind == primitive and not verdict.startswith("unusable")}
        if len(usable) > 1:
            rates = {name: float(rate.split()[0]) for name, rate in usable.items()}
            assert rates[winner] == max(rates.values()), rows
    if "sha_ni" in flags:
        assert rows[("SHA-256", "sha-ni")][1] != "unusable", rows
    if "bmi2" in flags:
        assert not rows[("DH", "mulx")][1].startswith("unusable"), rows
    else:
        assert rows[("DH", "mulx")][1].startswith("unusable"), rows


def test_named_engines_are_forced():
    rows, problems = engines(SPIPED_CRYPTO_ENGINE="dh=portable,sha256=portable")
    assert not problems
    assert used(rows, "DH") == "portable" and used(rows, "SHA-256") == "portable"
    if "aes" in cpu_flags():
        rows, problems = engines(SPIPED_CRYPTO_ENGINE="aes-ni")
        assert not problems and used(rows, "AES-256") == "aes-ni"
    rows, _ = engines(SPIPED_FORCE_PORTABLE="1")
    assert all(used(rows, primitive) == "portable" for primitive in ("SHA-256", "AES-256", "DH"))


def test_unknown_or_unusable_engine_is_reported_not_used():
    rows, problems = engines(SPIPED_CRYPTO_ENGINE="dh=warp-drive")
    assert any("no dh engine named warp-drive" in line for line in problems), problems
    assert not used(rows, "DH").startswith("warp")
    rows, problems = engines(SPIPED_CRYPTO_ENGINE="nonsense")
    assert any("no engine named nonsense" in line for line in problems), problems


def test_spiped_logs_the_choice_at_debug_and_warns_about_a_bad_name(tmp_path):
    key = tmp_path / "key"
    write_key(key)
    port = free_port()
    env = dict(os.environ, SPIPED_CRYPTO_ENGINE="dh=warp-drive")
    env.pop("SPIPED_FORCE_PORTABLE", None)
    log = tmp_path / "stderr"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([OUR_SPIPED, "-d", "-F", "--log-level", "debug", "-s", tcp_address(port),
                                    "-t", tcp_address(free_port()), "-k", str(key)], stderr=stderr, env=env)
    try:
        wait_until(lambda: is_listening(tcp_address(port)), what="spiped listening")
        deadline = time.time() + 5
        while time.time() < deadline and "crypto engines" not in log.read_text():
            time.sleep(0.05)
    finally:
        kill_and_reap(process)
    text = log.read_text()
    assert re.search(r"debug: crypto engines \(fastest usable, marked \*\): SHA-256: .*\*.*; AES-256: .*; DH: .*", text), text
    assert re.search(r"warning: SPIPED_CRYPTO_ENGINE: no dh engine named warp-drive", text), text
    # At the default level the choice is not logged, the warning is.
    port = free_port()
    with open(log, "wb") as stderr:
        process = subprocess.Popen([OUR_SPIPED, "-d", "-F", "-s", tcp_address(port), "-t", tcp_address(free_port()),
                                    "-k", str(key)], stderr=stderr, env=env)
    try:
        wait_until(lambda: is_listening(tcp_address(port)), what="spiped listening")
    finally:
        kill_and_reap(process)
    text = log.read_text()
    assert "crypto engines" not in text and "warp-drive" in text, text
