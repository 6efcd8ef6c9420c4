"""What a stranger without the key can make `spiped -d` do: CPU per connect, connection floods
that must not lock key holders out, and log lines that must neither flood nor block.

Every flood is bounded in count and time, runs from a separate process, and stops by itself."""
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from robust_harness import connect, echo_round_trip, read_until_closed, rss_kib, wait_until

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SHORT_ROUND_TRIP = 2_000


def cpu_seconds(pid):
    """User + system CPU time of a process and all its threads."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def stranger_connects(port, count, payload):
    """`count` connections that each send `payload` (possibly nothing), half-close, and wait
    for the server to close. Sequential, so the server's CPU is per connect."""
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            if payload:
                sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            read_until_closed(sock, timeout=10)


def _free_port():
    from robust_harness import free_port
    return free_port()


def wrong_key_handshake(sock):
    """Runs the client half of a spiped handshake with a key the server does not hold: the
    nonce exchange, then y = 2 with a correct MAC under the wrong key."""
    import hashlib
    import hmac
    wrong_key = hashlib.sha256(b"not the server's key").digest()
    client_nonce = os.urandom(32)
    sock.sendall(client_nonce)
    server_nonce = b""
    while len(server_nonce) < 32:
        chunk = sock.recv(32 - len(server_nonce))
        if not chunk:
            return
        server_nonce += chunk
    dk1 = hashlib.pbkdf2_hmac("sha256", wrong_key, client_nonce + server_nonce, 1, 64)
    y = (2).to_bytes(256, "big")
    sock.sendall(y + hmac.new(dk1[:32], y, hashlib.sha256).digest())


def stranger_handshakes(port, count):
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            wrong_key_handshake(sock)
            sock.shutdown(socket.SHUT_WR)
            read_until_closed(sock, timeout=10)


def measure_pair(daemons, target, key, attempt, rounds=4, count=800):
    """Server CPU per attempt on a default -d and on a -d -f, measured in alternating rounds
    (so background load falls on both alike); the least per-attempt cost of each, which is the
    figure least disturbed by other processes on a shared machine."""
    full = daemons("-d", _free_port(), target.port, key, "-n", "0")
    fast = daemons("-d", _free_port(), target.port, key, "-n", "0", "-f")
    time.sleep(1.0)            # the key-pair pool fills at start; not part of the figure
    for daemon in (full, fast):
        attempt(daemon.source_port, 50)   # warm up
    costs = {full.pid: [], fast.pid: []}
    for _ in range(rounds):
        for daemon in (full, fast):
            time.sleep(0.2)
            before = cpu_seconds(daemon.pid)
            attempt(daemon.source_port, count)
            time.sleep(0.3)        # let a pool refill (if any) finish: it is part of the cost
            costs[daemon.pid].append((cpu_seconds(daemon.pid) - before) / count)
    return min(costs[full.pid]), min(costs[fast.pid])


@pytest.mark.beyond_reference
@pytest.mark.parametrize("what", ["garbage", "wrong key"])
def test_strangers_cost_no_diffie_hellman(daemons, targets, key, what):
    """A connect that does not authenticate costs about what it costs a -f server (no
    exponentiation): the server takes its key pair only once the client's MAC verified."""
    target = targets("echo")
    garbage = os.urandom(320)
    if what == "garbage":
        def attempt(port, count):
            stranger_connects(port, count, garbage)
    else:
        attempt = stranger_handshakes
    full_cost, fast_cost = measure_pair(daemons, target, key, attempt)
    print(f"server CPU per unauthenticated connect ({what}): {full_cost * 1e6:.0f} us, with -f {fast_cost * 1e6:.0f} us")
    # Making a key pair (2^x mod p) costs about 130 us of CPU here (spiped-bench dh-generate);
    # without it both figures are an accept and a few system calls. Before the fix the
    # difference was 100-133 us; allow half a key pair for noise (10 ms clock ticks).
    assert full_cost - fast_cost < 65e-6, \
        f"{full_cost * 1e6:.0f} us per stranger's connect against {fast_cost * 1e6:.0f} us with -f"


FLOOD_SCRIPT = textwrap.dedent("""
    # Keeps up to WANT idle connections open to PORT, reopening each one the server closes,
    # for SECONDS seconds; prints how many connects it made.
    import selectors, socket, sys, time
    port, want, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    selector = selectors.DefaultSelector()
    opened = 0
    def open_one():
        global opened
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            s.close(); return
        selector.register(s, selectors.EVENT_READ)
        opened += 1
    deadline = time.monotonic() + seconds
    live = 0
    while time.monotonic() < deadline:
        live = len(selector.get_map())
        for _ in range(max(0, want - live)):
            open_one()
        for key, _ in selector.select(timeout=0.01):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                key.fileobj.close()
    print(opened, flush=True)
""")


def start_flood(port, want, seconds):
    return subprocess.Popen([sys.executable, "-c", FLOOD_SCRIPT, str(port), str(want), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def timed_round_trip(port, timeout):
    """One key holder's request through the -e: (ok, seconds)."""
    started = time.monotonic()
    try:
        echo_round_trip(port, size=SHORT_ROUND_TRIP, timeout=timeout)
        return True, time.monotonic() - started
    except (AssertionError, OSError):
        return False, time.monotonic() - started


def open_idle(port, count):
    opened = []
    for _ in range(count):
        try:
            opened.append(connect(port, timeout=0.25))
        except OSError:
            pass
    return opened


@pytest.mark.beyond_reference
def test_one_shot_idle_flood_does_not_lock_out_a_key_holder(pipe):
    """-d -n 50 -o 2 and 150 idle connections: the key holder's first try goes through, fast."""
    encrypt, decrypt, target = pipe(d_extra=["-n", "50", "-o", "2"], e_extra=["-o", "2"])
    flood = open_idle(decrypt.source_port, 150)
    try:
        assert len(flood) >= 100, f"only {len(flood)} flood connections opened"
        time.sleep(0.2)
        ok, seconds = timed_round_trip(encrypt.source_port, timeout=5)
        assert ok, f"the key holder's first connection failed after {seconds:.2f} s: {decrypt.stderr()[-1500:]}"
        assert seconds < 0.5, f"the key holder waited {seconds:.2f} s"
    finally:
        for sock in flood:
            sock.close()
    decrypt.assert_running()


@pytest.mark.beyond_reference
def test_sustained_idle_flood_keeps_serving_key_holders(pipe):
    """For 10 s a process keeps as many idle connections open as the server will take while a
    key holder connects every 100 ms: at least 99 % succeed, each within 500 ms; memory stays
    bounded and the daemon keeps serving."""
    encrypt, decrypt, target = pipe(d_extra=["-n", "50", "-o", "2"], e_extra=["-o", "2"])
    rss_before = rss_kib(decrypt.pid)
    flood = start_flood(decrypt.source_port, want=400, seconds=11)
    try:
        time.sleep(1.0)
        results = []
        attempts = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and flood.poll() is None:
            attempt = threading.Thread(target=lambda: results.append(timed_round_trip(encrypt.source_port, timeout=2)))
            attempt.start()
            attempts.append(attempt)
            time.sleep(0.1)
        for attempt in attempts:
            attempt.join(timeout=10)
        rss_during = rss_kib(decrypt.pid)
    finally:
        out, err = flood.communicate(timeout=30)
    flood_connects = int(out.strip() or 0)
    succeeded = [seconds for ok, seconds in results if ok]
    fast = [seconds for seconds in succeeded if seconds < 0.5]
    slowest = max(seconds for _, seconds in results)
    print(f"flood: {flood_connects} connects in 11 s; key holder: {len(succeeded)}/{len(results)} ok, "
          f"{len(fast)} within 500 ms, slowest {slowest * 1000:.0f} ms; RSS {rss_before} -> {rss_during} KiB")
    assert flood_connects > 1000, f"the flood made only {flood_connects} connects: {err[-500:]}"
    assert len(results) >= 80, f"only {len(results)} key-holder attempts in 10 s"
    assert len(fast) >= 0.99 * len(results), \
        f"{len(results) - len(fast)} of {len(results)} key-holder connections failed or took over 500 ms " \
        f"(slowest {slowest:.2f} s); -e says: {encrypt.stderr()[-2000:]}"
    assert rss_during < rss_before + 16 * 1024, f"RSS grew from {rss_before} to {rss_during} KiB"
    decrypt.assert_running()
    echo_round_trip(encrypt.source_port, size=100_000)


@pytest.mark.beyond_reference
def test_failed_handshakes_are_aggregated_in_the_log(pipe):
    """500 garbage connects write a handful of lines, and a count of the rest, not 500 lines."""
    encrypt, decrypt, target = pipe(d_extra=["-o", "2"])
    stranger_connects(decrypt.source_port, 500, os.urandom(320))
    time.sleep(0.5)
    lines = [line for line in decrypt.stderr().splitlines() if "did not authenticate" in line]
    assert 1 <= len(lines) <= 3, f"{len(lines)} lines for 500 failed handshakes:\n" + "\n".join(lines[:10])
    wait_until(lambda: "more in the last" in decrypt.stderr(), timeout=15,
               what="the count of the aggregated failures")
    summary = [line for line in decrypt.stderr().splitlines() if "more in the last" in line]
    counted = sum(int(line.split(": ")[-1].split(" more")[0]) for line in summary)
    assert counted == 500 - len(lines), f"{counted} counted + {len(lines)} written != 500:\n{decrypt.stderr()}"
    echo_round_trip(encrypt.source_port, size=10_000)


@pytest.mark.beyond_reference
def test_a_stalled_stderr_does_not_block_the_proxy(daemons, targets, key):
    """stderr is a full pipe nobody reads: failures must still not stop the event loops."""
    from robust_harness import Daemon, free_port
    import robust_harness
    target = targets("echo")
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        while True:
            os.write(write_end, b"x" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(write_end, True)
    port = free_port()
    process = subprocess.Popen([robust_harness.OUR_SPIPED, "-d", "-s", f"[127.0.0.1]:{port}",
                                "-t", f"[127.0.0.1]:{target.port}", "-k", str(key), "-F", "-o", "2"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=write_end)
    os.close(write_end)
    try:
        wait_until(lambda: port in robust_harness.listening_ports(), timeout=30, what="spiped -d listening")
        # Failures that log (more than a pipe's worth of lines if each were written).
        stranger_connects(port, 300, os.urandom(320))
        encrypt = daemons("-e", free_port(), port, key, "-o", "2")
        for _ in range(5):
            ok, seconds = timed_round_trip(encrypt.source_port, timeout=5)
            assert ok, f"a key holder failed while stderr was stalled ({seconds:.2f} s)"
        assert process.poll() is None
    finally:
        process.kill()
        process.wait(timeout=10)
        os.close(read_end)
