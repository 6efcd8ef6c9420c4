"""What scripts/install ships: man pages that lint clean and describe every option of --help,
systemd units that verify and score at most 2.0 in `systemd-analyze security`, a seccomp filter
that allows every system call spiped makes, and an install that puts stripped binaries, man
pages and units in place.

Needs mandoc, systemd-analyze (package systemd), strace and readelf (scripts/install-test-deps
installs them). systemd need not be running: every check works on files.
"""
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import OUR_SPIPE, OUR_SPIPED, REPO, EchoServer, free_port, is_listening, tcp_address, transfer, wait_until

MAN_PAGES = [REPO / "docs/man/spiped.1", REPO / "docs/man/spipe.1", REPO / "docs/man/spiped.conf.5"]
UNITS = ["spiped.service", "spiped@.service", "spiped.socket"]
SERVICES = ["spiped.service", "spiped@.service"]
MAXIMUM_EXPOSURE = 2.0


def need(tool):
    """The path of a required tool; fails (not skips) when it is missing, as CI installs it."""
    path = shutil.which(tool)
    assert path, f"{tool} is not installed (scripts/install-test-deps installs it)"
    return path


def run(argv, **kwargs):
    kwargs.setdefault("timeout", 120)
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def rendered(page):
    """The page as plain text (mandoc's overstriking for bold and underline removed)."""
    result = run([need("mandoc"), "-T", "ascii", str(page)])
    assert result.returncode == 0, result.stderr
    return re.sub(r".\x08", "", result.stdout)


def section(text, title):
    """The lines of one top-level section (an unindented title line) of a rendered page."""
    lines = text.splitlines()
    start = lines.index(title)
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^[A-Z][A-Z ]+$", lines[i])), len(lines))
    return lines[start + 1:end]


def help_options(binary):
    """Every option named by `binary --help`: the first column of each option line."""
    result = run([binary, "--help"], timeout=10)
    assert result.returncode == 0
    names = []
    for line in result.stdout.splitlines():
        if line.startswith("  -"):
            synopsis = re.split(r"\s{2,}", line.strip())[0]
            names += [word.split()[0] for word in synopsis.split(", ")]
    return names


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """scripts/install run twice on the binaries under test: staged (DESTDIR, default PREFIX),
    and into a PREFIX of its own (so the units name a binary that exists, for verify)."""
    root = tmp_path_factory.mktemp("install")
    build = root / "build"
    build.mkdir()
    for binary in (OUR_SPIPED, OUR_SPIPE):
        shutil.copy2(binary, build / Path(binary).name)
    environment = dict(os.environ, BUILD_DIR=str(build))
    environment.pop("PREFIX", None)
    staged = run([str(REPO / "scripts/install")], env=dict(environment, DESTDIR=str(root / "stage")))
    assert staged.returncode == 0, staged.stderr
    prefix = root / "prefix"
    own = run([str(REPO / "scripts/install")], env=dict(environment, PREFIX=str(prefix)))
    assert own.returncode == 0, own.stderr
    return {"stage": root / "stage", "prefix": prefix, "build": build}


@pytest.mark.parametrize("page", MAN_PAGES, ids=lambda p: p.name)
def test_man_page_lints_clean(page):
    result = run([need("mandoc"), "-T", "lint", "-W", "warning", str(page)])
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("program", ["spiped", "spipe"])
def test_every_help_option_is_described_in_the_man_page(program):
    """Each option of --help heads an item of the OPTIONS section, and each item is in --help."""
    binary = OUR_SPIPED if program == "spiped" else OUR_SPIPE
    options = help_options(binary)
    assert len(options) >= 10
    items = set()
    for line in section(rendered(REPO / f"docs/man/{program}.1"), "OPTIONS"):
        match = re.match(r"^ {5}(-[^\s,]+(?:, -[^\s,]+)*)", line)
        if match:
            items.update(match.group(1).split(", "))
    missing = [option for option in options if option not in items]
    assert not missing, f"options of {program} --help not described in {program}.1: {missing}"
    extra = sorted(items - set(options))
    assert not extra, f"options in {program}.1 that {program} --help does not show: {extra}"


def test_spiped_page_has_the_required_sections():
    text = rendered(REPO / "docs/man/spiped.1")
    for title in ["SIGNALS", "EXIT STATUS", "FILES", "EXAMPLES", "DIFFERENCES FROM THE REFERENCE", "SEE ALSO"]:
        assert section(text, title), title
    assert "redis-server" in "\n".join(section(text, "EXAMPLES"))
    signals = "\n".join(section(text, "SIGNALS"))
    for word in ["SIGTERM", "SIGINT", "SIGHUP", "second"]:
        assert word in signals


def test_configuration_page_names_every_key():
    text = "\n".join(section(rendered(REPO / "docs/man/spiped.conf.5"), "DESCRIPTION"))
    keys = ["pid-file", "user", "syslog", "log-level", "metrics", "drain-timeout", "include", "mode", "source",
            "target", "key", "route", "fast", "require-forward-secrecy", "max-connections", "timeout",
            "resolve-interval", "resolve", "keepalive", "bind-address", "pool", "pool-max-age", "socket-mode",
            "socket-group"]
    missing = [k for k in keys if not re.search(rf"^ {{5}}{re.escape(k)} = ", text, re.MULTILINE)]
    assert not missing


@pytest.mark.parametrize("unit", UNITS)
def test_unit_verifies(installed, unit, tmp_path):
    """`systemd-analyze verify` on the installed unit: no error and no warning."""
    unit_dir = installed["prefix"] / "lib/systemd/system"
    paths = [unit_dir / unit]
    if unit == "spiped@.service":
        # Verify an instance too (the template's %i and %d expanded).
        instance = tmp_path / "spiped@redis.service"
        shutil.copy(unit_dir / unit, instance)
        paths.append(instance)
    if unit == "spiped.socket":
        paths.append(unit_dir / "spiped.service")
    result = run([need("systemd-analyze"), "verify", "--man=no", *map(str, paths)])
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize("unit", SERVICES)
def test_unit_hardening_scores_at_most_two(unit):
    result = run([need("systemd-analyze"), "security", "--offline=yes", "--threshold=20", "--no-pager",
                  str(REPO / "systemd" / unit)])
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAXIMUM_EXPOSURE, result.stdout
    assert result.returncode == 0


def allowed_system_calls(unit_text):
    """The system calls a unit's SystemCallFilter= lines allow, as systemd applies them: the first
    line sets an allow list; later lines add (plain) or remove (~) names and @groups."""
    analyze = need("systemd-analyze")
    groups = {}
    current = None
    for line in run([analyze, "syscall-filter"]).stdout.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            groups[current] = []
        elif current and line.strip() and not line.strip().startswith("#"):
            groups[current].append(line.strip().split()[0])

    def expand(name, seen=()):
        if not name.startswith("@"):
            return {name}
        assert name in groups, f"unknown system call group {name}"
        names = set()
        for member in groups[name]:
            if member not in seen:
                names |= expand(member, seen + (name,))
        return names

    allowed = None
    for value in re.findall(r"^SystemCallFilter=(.*)$", unit_text, re.MULTILINE):
        deny = value.startswith("~")
        names = set().union(*(expand(word) for word in value.lstrip("~").split()))
        if allowed is None:
            assert not deny, "the filter should be an allow list"
            allowed = names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    assert allowed is not None, "no SystemCallFilter="
    return allowed


def traced(binary, arguments, trace, tmp_path):
    """Starts binary under `strace -f`; returns (strace process, pid of the traced spiped)."""
    log = open(tmp_path / (Path(trace).name + ".stderr"), "wb")
    process = subprocess.Popen([need("strace"), "-f", "-qq", "-o", str(trace), binary, *arguments],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    process.log = log

    def child():
        # strace may first fork short-lived children of its own (to probe ptrace features):
        # wait for the one that runs the binary.
        for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split():
            try:
                if os.readlink(f"/proc/{pid}/exe") == os.path.realpath(binary):
                    return int(pid)
            except OSError:
                pass
        return None

    try:
        wait_until(lambda: child() is not None or process.poll() is not None, what="traced process")
        pid = child()
        assert pid is not None, f"{binary} exited under strace: {Path(log.name).read_text(errors='replace')}"
    except BaseException:
        process.kill()
        process.wait()
        log.close()
        raise
    return process, pid


def test_every_system_call_spiped_makes_is_allowed_by_the_units(tmp_path, key):
    """A -e/-d pair carries a connection under strace, then drains on SIGTERM; every system call
    either end made (the key-pair thread's setpriority included) passes each unit's filter."""
    echo = EchoServer(tcp_address(free_port()))
    traces, processes = [], []
    try:
        server_address, client_address = tcp_address(free_port()), tcp_address(free_port())
        for mode, source, target in (("-d", server_address, echo.address), ("-e", client_address, server_address)):
            trace = tmp_path / f"trace{mode}"
            processes.append(traced(OUR_SPIPED, [mode, "-F", "-s", source, "-t", target, "-k", str(key)], trace, tmp_path))
            traces.append(trace)
            wait_until(lambda: is_listening(source), what=f"spiped {mode} under strace", timeout=30)
        payload = os.urandom(300_000)
        assert transfer(client_address, payload) == payload
        for strace, pid in processes:
            os.kill(pid, signal.SIGTERM)
        for strace, pid in processes:
            assert strace.wait(timeout=30) == 0
    finally:
        for strace, pid in processes:
            if strace.poll() is None:
                # Killing strace alone would leave the traced spiped running, detached.
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    strace.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    strace.kill()
                    strace.wait()
            strace.log.close()
        echo.close()
    used = set()
    for trace in traces:
        used |= set(re.findall(r"^\d+\s+([a-z0-9_]+)\(", Path(trace).read_text(), re.MULTILINE))
    assert {"setpriority", "epoll_wait", "accept4", "getrandom"} <= used, sorted(used)
    for unit in SERVICES:
        allowed = allowed_system_calls((REPO / "systemd" / unit).read_text())
        assert "setpriority" in allowed
        refused = sorted(used - allowed)
        assert not refused, f"{unit} would refuse {refused}"


def test_staged_install_puts_everything_in_place(installed):
    stage = installed["stage"] / "usr/local"
    expected = {
        "bin/spiped": 0o755, "bin/spipe": 0o755,
        "share/man/man1/spiped.1": 0o644, "share/man/man1/spipe.1": 0o644, "share/man/man5/spiped.conf.5": 0o644,
        "lib/systemd/system/spiped.service": 0o644, "lib/systemd/system/spiped@.service": 0o644,
        "lib/systemd/system/spiped.socket": 0o644,
    }
    found = {str(p.relative_to(stage)): p.stat().st_mode & 0o777 for p in stage.rglob("*") if p.is_file()}
    assert found == expected
    # The units name the final path, not the staging directory.
    for unit in SERVICES:
        text = (stage / "lib/systemd/system" / unit).read_text()
        assert re.search(r"^ExecStart=/usr/local/bin/spiped ", text, re.MULTILINE)
        assert str(installed["stage"]) not in text
    prefix_unit = (installed["prefix"] / "lib/systemd/system/spiped.service").read_text()
    assert f"ExecStart={installed['prefix']}/bin/spiped --config" in prefix_unit


@pytest.mark.parametrize("program", ["spiped", "spipe"])
def test_installed_binary_is_stripped_and_runs(installed, program):
    binary = installed["stage"] / "usr/local/bin" / program
    result = run([str(binary), "--version"], timeout=10)
    assert (result.returncode, result.stdout) == (0, f"{program} 1.6.4\n")
    sections = run([need("readelf"), "-S", "-W", str(binary)]).stdout
    assert ".text" in sections
    assert not re.search(r"\.debug_|\.symtab", sections), "debug information or symbols left in"
    assert binary.stat().st_size < (installed["build"] / program).stat().st_size


@pytest.mark.parametrize("page", ["man1/spiped.1", "man1/spipe.1", "man5/spiped.conf.5"])
def test_installed_man_page_renders(installed, page):
    result = run([need("mandoc"), "-T", "utf8", str(installed["stage"] / "usr/local/share/man" / page)])
    assert result.returncode == 0 and result.stderr == ""
    text = re.sub(r".\x08", "", result.stdout)
    assert "NAME" in text and "SEE ALSO" in text and len(text.splitlines()) > 40
