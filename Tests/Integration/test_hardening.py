"""Hardening of our binaries (issue 11, items 6, 7, 9 and the key-file size limit).

- `-u` drops every privilege: real, effective, saved and filesystem ids and the supplementary
  groups are exactly the target ones (read from /proc/PID/status); an unknown name makes the
  daemonizing command itself fail.
- A process holding a key is non-dumpable (its /proc/PID files then belong to root even when it
  runs as another user), and K sits in pages marked MADV_DONTDUMP ("dd" in /proc/PID/smaps).
- spipe exits non-zero with a message when it could not write standard output or read
  standard input.
- A key file over 1 MiB is refused.

These are our behaviours only: the reference does none of them (README, "Where we differ").
"""
import hashlib
import os
import re
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import BINARIES, THEIR_SPIPED, free_port, is_listening, tcp_address, wait_until
from test_handshake import exchange

OUR_SPIPED = BINARIES["ours"]["spiped"]
OUR_SPIPE = BINARIES["ours"]["spipe"]
NOBODY = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (privilege drops, other users, /proc/PID/mem)")


def status_of(pid):
    """The Uid:, Gid: (real, effective, saved, filesystem) and Groups: lines of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("Uid", "Gid", "Groups"):
            fields[name] = [int(v) for v in value.split()]
    fields["Groups"] = sorted(fields["Groups"])
    return fields


def ids_are(pid, uid, gid, groups):
    status = status_of(pid)
    return status == {"Uid": [uid] * 4, "Gid": [gid] * 4, "Groups": sorted(groups)}


@pytest.fixture
def account(procs):
    """A user created for the test, with a primary group and one supplementary group; removed
    afterwards, once the test's processes (which may run as that user) are gone. Returns
    (name, uid, primary gid, supplementary group name, its gid)."""
    if os.geteuid() != 0:
        pytest.skip("creating users needs root")
    tag = uuid.uuid4().hex[:8]
    user, primary, extra = f"sph-u{tag}", f"sph-p{tag}", f"sph-s{tag}"
    created = []
    try:
        for group in (primary, extra):
            subprocess.run(["groupadd", group], check=True, capture_output=True, timeout=30)
            created.append(("groupdel", group))
        subprocess.run(["useradd", "-M", "-N", "-g", primary, "-G", extra, "-s", "/usr/sbin/nologin", user],
                       check=True, capture_output=True, timeout=30)
        created.append(("userdel", user))
        import grp
        import pwd
        entry = pwd.getpwnam(user)
        yield user, entry.pw_uid, entry.pw_gid, extra, grp.getgrnam(extra).gr_gid
    finally:
        procs.kill_all()  # userdel refuses a user that still runs processes
        for command, name in reversed(created):
            subprocess.run([command, name], check=True, capture_output=True, timeout=30)


def start_dropping(procs, key, echo, spec):
    """A foreground spiped -d that drops to `spec` after binding."""
    key.chmod(0o600)  # read as root, before the drop
    return procs.spiped(OUR_SPIPED, "-d", tcp_address(free_port()), echo().address, key, "-u", spec)


@needs_root
def test_user_alone_takes_its_primary_and_supplementary_groups(procs, key, echo, account):
    """-u user: uid, the user's primary group (not root's gid 0) and its group memberships;
    the dropped process still serves."""
    user, uid, primary, _, extra_gid = account
    target = echo()
    source = tcp_address(free_port())
    proc = procs.spiped(OUR_SPIPED, "-d", source, target.address, key, "-u", user)
    wait_until(lambda: status_of(proc.pid)["Uid"][0] == uid or proc.poll() is not None, what="privilege drop")
    assert proc.poll() is None, proc.stderr_text()
    assert status_of(proc.pid) == {"Uid": [uid] * 4, "Gid": [primary] * 4, "Groups": sorted([primary, extra_gid])}
    entry = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", entry, source, key)
    assert exchange(entry) == b"ping"


@needs_root
def test_user_and_group_take_only_that_group(procs, key, echo, account):
    """-u user:group: the named group is the primary and the only supplementary group."""
    user, uid, _, extra, extra_gid = account
    proc = start_dropping(procs, key, echo, f"{user}:{extra}")
    wait_until(lambda: status_of(proc.pid)["Uid"][0] == uid or proc.poll() is not None, what="privilege drop")
    assert proc.poll() is None, proc.stderr_text()
    assert ids_are(proc.pid, uid, extra_gid, [extra_gid]), status_of(proc.pid)


@needs_root
def test_group_only_keeps_the_user_and_sets_every_group_id(procs, key, echo, account):
    """-u :group: uid 0 stays; real, effective, saved gid and the groups are the named group."""
    _, _, _, extra, extra_gid = account
    proc = start_dropping(procs, key, echo, f":{extra}")
    wait_until(lambda: status_of(proc.pid)["Gid"][0] == extra_gid or proc.poll() is not None, what="group change")
    assert proc.poll() is None, proc.stderr_text()
    assert ids_are(proc.pid, 0, extra_gid, [extra_gid]), status_of(proc.pid)


@pytest.mark.parametrize("spec,message", [
    ("no-such-user-xyz", "No such user: no-such-user-xyz"),
    (":no-such-group-xyz", "No such group: no-such-group-xyz"),
    ("no-such-user-xyz:nogroup", "No such user: no-such-user-xyz"),
])
@pytest.mark.parametrize("wait_for_dns", [False, True], ids=["daemon", "daemon -D"])
def test_unknown_user_or_group_fails_before_daemonizing(tmp_path, key, spec, message, wait_for_dns):
    """Without -F the launching command itself exits 1 with the message; no daemon is left
    behind (it used to exit 0 and let the daemon die after writing its pid file)."""
    source = tcp_address(free_port())
    pid_file = tmp_path / "spiped.pid"
    argv = [OUR_SPIPED, "-d", "-s", source, "-t", tcp_address(free_port()), "-k", str(key), "-u", spec, "-p", str(pid_file)]
    if wait_for_dns:
        argv.insert(1, "-D")
    with open(tmp_path / "launcher.out", "w+b") as out:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=20)
        out.seek(0)
        output = out.read().decode(errors="replace")
    assert result.returncode != 0, output
    assert message in output
    assert not pid_file.exists(), "a daemon was started"
    assert not is_listening(source)


def run_as_nobody():
    """preexec_fn: become nobody/nogroup (all ids, no supplementary groups) before exec."""
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)


@pytest.fixture
def nobody_key():
    """A key file nobody can read, in a directory nobody can traverse."""
    directory = tempfile.mkdtemp(prefix="spiped-hardening-", dir="/tmp")
    path = Path(directory) / "key"
    path.write_bytes(os.urandom(32))
    os.chmod(directory, 0o711)
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o600)
    yield path
    path.unlink()
    os.rmdir(directory)


@needs_root
@pytest.mark.parametrize("program", ["spiped", "spipe"])
def test_process_holding_a_key_is_not_dumpable(procs, echo, nobody_key, program):
    """Started as nobody (no -u), the process makes itself non-dumpable once the key is
    loaded: the kernel then gives its /proc/PID files to root instead of nobody."""
    target = echo()
    if program == "spiped":
        source = tcp_address(free_port())
        proc = procs.start([OUR_SPIPED, "-d", "-s", source, "-t", target.address, "-k", str(nobody_key), "-F"],
                           preexec_fn=run_as_nobody)
        wait_until(lambda: is_listening(source) or proc.poll() is not None, what="spiped listening")
    else:
        server = tcp_address(free_port())
        procs.spiped(THEIR_SPIPED, "-d", server, target.address, nobody_key)
        proc = procs.start([OUR_SPIPE, "-t", server, "-k", str(nobody_key)], stdin=subprocess.PIPE,
                           preexec_fn=run_as_nobody)
        wait_until(lambda: target.connections == 1 or proc.poll() is not None, what="spipe connected")
    assert proc.poll() is None, proc.stderr_text()
    assert status_of(proc.pid)["Uid"] == [NOBODY] * 4
    owner = os.stat(f"/proc/{proc.pid}/status").st_uid
    assert owner == 0, f"/proc/{proc.pid} belongs to uid {owner}: the process is dumpable"
    # Another process of the same user may not look inside (ptrace access check).
    probe = subprocess.run(["cat", f"/proc/{proc.pid}/environ"], preexec_fn=run_as_nobody,
                           capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0 and "Permission denied" in probe.stderr, probe.stderr
    if proc.stdin:
        proc.stdin.close()


def dont_dump_regions(pid):
    """(start, end) of the private anonymous writable mappings marked "dd" (MADV_DONTDUMP)."""
    regions = []
    current = None
    header = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$")
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        match = header.match(line)
        if match:
            start, end, permissions, inode, name = match.groups()
            anonymous = inode == "0" and name == "" and permissions.startswith("rw")
            current = (int(start, 16), int(end, 16)) if anonymous else None
        elif line.startswith("VmFlags:") and current and "dd" in line.split()[1:]:
            regions.append(current)
    return regions


@needs_root
@pytest.mark.parametrize("program", ["spiped", "spipe"])
def test_key_is_kept_in_pages_excluded_from_core_dumps(procs, key, echo, program):
    """K = SHA256(key file) is found in a private mapping marked MADV_DONTDUMP."""
    target = echo()
    if program == "spiped":
        source = tcp_address(free_port())
        proc = procs.spiped(OUR_SPIPED, "-d", source, target.address, key)
    else:
        server = tcp_address(free_port())
        procs.spiped(THEIR_SPIPED, "-d", server, target.address, key)
        proc = procs.start([OUR_SPIPE, "-t", server, "-k", str(key)], stdin=subprocess.PIPE)
        wait_until(lambda: target.connections == 1 or proc.poll() is not None, what="spipe connected")
    assert proc.poll() is None, proc.stderr_text()
    secret = hashlib.sha256(key.read_bytes()).digest()
    regions = dont_dump_regions(proc.pid)
    assert regions, "no memory is marked MADV_DONTDUMP"
    found = False
    with open(f"/proc/{proc.pid}/mem", "rb", buffering=0) as memory:
        for start, end in regions:
            memory.seek(start)
            if secret in memory.read(end - start):
                found = True
    assert found, "K is not in the MADV_DONTDUMP pages"
    if proc.stdin:
        proc.stdin.close()


@pytest.fixture
def spipe_server(procs, key, echo):
    """A reference spiped -d in front of an echo server; returns its address."""
    server = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-d", server, echo().address, key)
    return server


def run_spipe(procs, server, key, stdin, stdout):
    proc = procs.start([OUR_SPIPE, "-t", server, "-k", str(key)], stdin=stdin, stdout=stdout)
    return proc.wait(timeout=30), proc.stderr_text()


def test_spipe_fails_when_standard_output_is_full(procs, tmp_path, key, spipe_server):
    """`spipe > /dev/full`: the echoed bytes cannot be written, so spipe must not exit 0
    (while the same run into a file succeeds)."""
    (tmp_path / "input").write_bytes(b"ping\n" * 1000)
    with open(tmp_path / "input", "rb") as stdin, open(tmp_path / "output", "wb") as stdout:
        code, stderr = run_spipe(procs, spipe_server, key, stdin, stdout)
    assert code == 0, stderr
    assert (tmp_path / "output").read_bytes() == b"ping\n" * 1000
    with open(tmp_path / "input", "rb") as stdin, open("/dev/full", "wb") as stdout:
        code, stderr = run_spipe(procs, spipe_server, key, stdin, stdout)
    assert code != 0
    assert "spipe: writing standard output: No space left on device" in stderr


def test_spipe_fails_when_standard_input_cannot_be_read(procs, tmp_path, key, spipe_server):
    """Standard input is a directory: read(2) fails with EISDIR, which is not end of input."""
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with open(tmp_path / "output", "wb") as stdout:
            code, stderr = run_spipe(procs, spipe_server, key, directory, stdout)
    finally:
        os.close(directory)
    assert code != 0
    assert "spipe: reading standard input: Is a directory" in stderr


LIMIT = 1 << 20


def test_key_file_over_one_mebibyte_is_refused(procs, tmp_path, echo):
    """Exactly 1 MiB is a key (it works with the reference, which hashes any size); one byte
    more is refused with a message."""
    key = tmp_path / "large-key"
    key.write_bytes(os.urandom(LIMIT))
    key.chmod(0o600)
    target = echo()
    source = tcp_address(free_port())
    procs.spiped(OUR_SPIPED, "-d", source, target.address, key)
    entry = tcp_address(free_port())
    procs.spiped(THEIR_SPIPED, "-e", entry, source, key)
    assert exchange(entry) == b"ping"

    huge = tmp_path / "huge-key"
    huge.write_bytes(b"\0" * (LIMIT + 1))
    huge.chmod(0o600)
    proc = procs.start([OUR_SPIPED, "-d", "-s", tcp_address(free_port()), "-t", target.address, "-k", str(huge), "-F"])
    assert proc.wait(timeout=20) == 1
    assert f"Key file {huge} is larger than 1 MiB" in proc.stderr_text()


def test_key_on_standard_input_over_one_mebibyte_is_refused(procs, tmp_path):
    """`-k -` reads standard input: an endless or huge stream stops at the limit."""
    with open("/dev/zero", "rb") as endless:
        proc = procs.start([OUR_SPIPE, "-t", tcp_address(free_port()), "-k", "-"], stdin=endless)
        assert proc.wait(timeout=20) == 1
    assert "The key on standard input is larger than 1 MiB" in proc.stderr_text()
