"""Fixtures of the robustness suite (see robust_harness.py for the parts)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from robust_harness import TESTING_THE_REFERENCE, Daemon, TargetServer, free_port  # noqa: E402
from spiped_testkit import write_key  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "beyond_reference: behaviour the reference spiped lacks")


def pytest_collection_modifyitems(config, items):
    if not TESTING_THE_REFERENCE:
        return
    for item in items:
        if item.get_closest_marker("beyond_reference"):
            item.add_marker(pytest.mark.xfail(reason="the reference spiped lacks this", strict=True))


@pytest.fixture
def key(tmp_path):
    """A fresh 256-bit key file, readable by its owner only."""
    return write_key(tmp_path / "key")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, attaches the tail of every spiped's stderr to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for daemon in getattr(item, "spiped_daemons", []):
            try:
                text = daemon.stderr()[-3000:]
            except OSError:
                continue
            report.sections.append((f"spiped {daemon.mode} (port {daemon.source_port}) stderr", text))


@pytest.fixture
def daemons(tmp_path, request):
    """Starts spiped processes (`daemons(mode, source_port, target_port, key, *extra)`) and
    kills every one of them at teardown."""
    started = []
    request.node.spiped_daemons = started

    def start(*args, **kwargs):
        daemon = Daemon(tmp_path, *args, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    reports = []
    for daemon in started:
        daemon.stop()
        text = daemon.stderr()
        # A sanitizer build (ASan) or a valgrind wrapper reports memory errors on stderr.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "Invalid read", "Invalid write", "uninitialised value", "Invalid free"):
            if marker in text:
                reports.append(f"spiped {daemon.mode}: {marker}\n{text[-4000:]}")
                break
    assert not reports, "memory errors reported:\n" + "\n".join(reports)


@pytest.fixture
def targets():
    """Starts target servers (`targets(behaviour)`) and closes them at teardown."""
    started = []

    def start(*args, **kwargs):
        server = TargetServer(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def pipe(daemons, targets, key):
    """An echo target behind `spiped -d`, with `spiped -e` in front, both the binary under
    test. Extra options for each side: `pipe(d_extra=[...], e_extra=[...])`. Returns
    (encrypt daemon, decrypt daemon, target server)."""

    def start(d_extra=(), e_extra=(), behaviour="echo", d_limit_fds=None, e_limit_fds=None):
        target = targets(behaviour)
        decrypt = daemons("-d", free_port(), target.port, key, *d_extra, limit_fds=d_limit_fds)
        encrypt = daemons("-e", free_port(), decrypt.source_port, key, *e_extra,
                          limit_fds=e_limit_fds)
        return encrypt, decrypt, target

    return start
