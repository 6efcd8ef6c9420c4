"""Operating spiped day to day: Prometheus metrics (scraped by a real Prometheus), /healthz,
the systemd notify protocol, socket activation, log lines and levels, the drain on SIGTERM,
and the mode and group of a Unix-socket source.

Everything runs against OUR_SPIPED; pointing OUR_SPIPED at Debian's /usr/bin/spiped (which has
none of these features) makes every test here fail.
"""
import calendar
import grp
import http.client
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import OUR_SPIPED, connect, free_port, is_listening, tcp_address, transfer, wait_until
from spiped_testkit import listening_tcp_ports
from test_handshake import exchange

# "2026-12-02T21:46:21.071Z spiped: notice: ": a UTC timestamp with milliseconds, then severity.
FILE_PREFIX = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z spiped: (error|warning|notice|info|debug): ")
# One line per finished connection at --log-level info.
ENDED = re.compile(r"(?P<pipe>\S+): connection from (?P<peer>\S+) ended after (?P<seconds>[0-9.]+) s, "
                   r"(?P<to_target>\d+) bytes to the target, (?P<back>\d+) bytes back: (?P<why>.+)$")


# --- helpers ----------------------------------------------------------------------------------

def start(procs, argv, env=None, stderr_path=None):
    """Starts argv like procs.start, optionally with stderr going to a file of our choice (its
    identity must be known before the start, for JOURNAL_STREAM)."""
    if stderr_path is None:
        return procs.start(argv, env=env)
    log = open(stderr_path, "w+b")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
    proc.log = log
    proc.stderr_text = lambda: Path(log.name).read_text(errors="replace")
    procs.started.append(proc)
    return proc


def wait_listening(proc, address, what="spiped"):
    wait_until(lambda: is_listening(address) or proc.poll() is not None, what=f"{what} listening on {address}")
    assert proc.poll() is None, f"{what} exited early: {proc.stderr_text()}"


def http_request(port, method="GET", path="/metrics"):
    """(status, headers, body) of one request to 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        conn.close()


LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_samples(text):
    """{(name, frozenset of label pairs): value} of a Prometheus text exposition."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, labels = head.partition("{")
        samples[(name, frozenset(LABEL.findall(labels)))] = float(value)
    return samples


def sample(samples, name, **labels):
    """The value of the one sample of `name` whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def scrape(port):
    status, _, body = http_request(port)
    assert status == 200
    return parse_samples(body)


def reply_third(conn):
    """A target handler that reads to EOF, then answers with a third of what it got (plus one
    byte) and closes: the two directions carry different byte counts."""
    received = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        received += len(data)
    conn.sendall(b"r" * reply_size(received))
    conn.shutdown(socket.SHUT_WR)


def reply_size(sent):
    return sent // 3 + 1


def start_pair(procs, key, target, *server_extra, client_key=None):
    """Our -d (source, target, extra options) with our -e in front; returns (decrypt process,
    its source, the -e process, its source)."""
    source = tcp_address(free_port())
    decrypt = procs.spiped(OUR_SPIPED, "-d", source, target, key, *server_extra)
    entry = tcp_address(free_port())
    encrypt = procs.spiped(OUR_SPIPED, "-e", entry, source, client_key or key)
    return decrypt, source, encrypt, entry


def open_idle_connection(entry):
    """A connection through the pipe that has carried one byte each way and stays open."""
    s = connect(entry, timeout=10)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    return s


def stop(proc, timeout=10):
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


# --- 1. a real Prometheus -----------------------------------------------------------------------

PROMETHEUS = shutil.which("prometheus")
CONNECTIONS = 7


def prometheus_query(port, expression):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def prometheus_ready(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus package")
def test_prometheus_scrape_counts_connections_and_bytes(procs, tmp_path, key, echo):
    target = echo(handler=reply_third)
    metrics_port = free_port()
    decrypt, source, _, entry = start_pair(procs, key, target.address, "--metrics", f"[127.0.0.1]:{metrics_port}")
    wait_until(lambda: metrics_port in listening_tcp_ports(), what="the metrics endpoint")

    prometheus_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                      "scrape_configs:\n  - job_name: spiped\n"
                      f"    static_configs:\n      - targets: ['127.0.0.1:{metrics_port}']\n")
    prometheus = procs.start([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                              f"--web.listen-address=127.0.0.1:{prometheus_port}", "--log.level=warn"])
    wait_until(lambda: prometheus_ready(prometheus_port) or prometheus.poll() is not None, timeout=20,
               what="Prometheus ready", interval=0.1)
    assert prometheus.poll() is None, prometheus.stderr_text()

    # Exactly CONNECTIONS connections of known, different sizes, each answered in full.
    payloads = [bytes([i]) * (1000 * i + 17) for i in range(1, CONNECTIONS + 1)]
    for payload in payloads:
        assert len(transfer(entry, payload)) == reply_size(len(payload))
    sent = {"source_to_target": sum(len(p) for p in payloads),
            "target_to_source": sum(reply_size(len(p)) for p in payloads)}
    # Once the -d has closed every connection its counters are final; any scrape that starts
    # after that moment must carry them.
    pipe = {"pipe": source, "mode": "decrypt"}
    wait_until(lambda: sample(scrape(metrics_port), "spiped_connections_open", **pipe) == 0,
               what="the -d to close its connections")
    settled = time.time()
    selector = f'{{pipe="{source}",mode="decrypt"}}'

    def scraped_after_traffic():
        result = prometheus_query(prometheus_port, f"timestamp(spiped_connections_total{selector})")
        return bool(result) and float(result[0]["value"][1]) > settled
    wait_until(scraped_after_traffic, timeout=15, what="a Prometheus scrape after the traffic", interval=0.2)

    up = prometheus_query(prometheus_port, 'up{job="spiped"}')
    assert [float(r["value"][1]) for r in up] == [1.0]
    total = prometheus_query(prometheus_port, f"spiped_connections_total{selector}")
    assert [float(r["value"][1]) for r in total] == [CONNECTIONS]
    for direction in ("source_to_target", "target_to_source"):
        result = prometheus_query(prometheus_port, f'spiped_bytes_total{{pipe="{source}",direction="{direction}"}}')
        assert [float(r["value"][1]) for r in result] == [sent[direction]], direction
    histogram = prometheus_query(prometheus_port, f"spiped_handshake_duration_seconds_count{selector}")
    assert [float(r["value"][1]) for r in histogram] == [CONNECTIONS]
    failures = prometheus_query(prometheus_port, f"sum(spiped_handshake_failures_total{selector})")
    assert [float(r["value"][1]) for r in failures] == [0]
    prometheus.send_signal(signal.SIGTERM)
    prometheus.wait(timeout=10)
    assert stop(decrypt) == 0


# --- 2. /metrics and /healthz over HTTP -------------------------------------------------------

def test_metrics_endpoint_healthz_and_refusals(procs, key, echo):
    target = echo()
    metrics_port = free_port()
    decrypt, source, _, entry = start_pair(procs, key, target.address, "--metrics", f"[127.0.0.1]:{metrics_port}")
    wait_until(lambda: metrics_port in listening_tcp_ports(), what="the metrics endpoint")

    status, headers, body = http_request(metrics_port, "GET", "/healthz")
    assert status == 200, body
    status, headers, body = http_request(metrics_port, "GET", "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    # Every family has HELP and TYPE lines, and the pipe is labelled by its name (the -s text).
    families = re.findall(r"^# TYPE (\w+) (\w+)$", body, re.M)
    assert set(re.findall(r"^# HELP (\w+) ", body, re.M)) == {name for name, _ in families}
    for family in ("spiped_build_info", "spiped_pipe_listening", "spiped_connections_open",
                   "spiped_connections_total", "spiped_connections_closed_total",
                   "spiped_handshake_failures_total", "spiped_target_connect_failures_total",
                   "spiped_bytes_total", "spiped_handshake_duration_seconds"):
        assert family in dict(families), family
    assert dict(families)["spiped_handshake_duration_seconds"] == "histogram"
    samples = parse_samples(body)
    assert sample(samples, "spiped_pipe_listening", pipe=source, mode="decrypt") == 1

    assert http_request(metrics_port, "GET", "/")[0] == 404
    assert http_request(metrics_port, "GET", "/metrics/extra")[0] == 404
    status, headers, _ = http_request(metrics_port, "POST", "/metrics")
    assert status == 405 and "GET" in headers.get("Allow", "")
    assert http_request(metrics_port, "DELETE", "/healthz")[0] == 405

    # Draining, the pipe no longer listens: /healthz says so and the gauge drops to 0.
    idle = open_idle_connection(entry)
    assert sample(scrape(metrics_port), "spiped_connections_open", pipe=source) == 1
    decrypt.send_signal(signal.SIGTERM)
    wait_until(lambda: http_request(metrics_port, "GET", "/healthz")[0] == 503, what="/healthz 503 while draining")
    assert sample(scrape(metrics_port), "spiped_pipe_listening", pipe=source) == 0
    idle.close()
    assert decrypt.wait(timeout=10) == 0


# --- 3. systemd's notify protocol -------------------------------------------------------------

class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET; collects every message."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def next(self, timeout=10):
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536).decode()
        message = dict(line.split("=", 1) for line in data.splitlines() if line)
        self.messages.append(message)
        return message

    def next_state(self, timeout=10):
        """The next message that is more than a STATUS= update."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            if set(message) - {"STATUS"}:
                return message

    def wait_status(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            message = self.next(max(0.01, deadline - time.monotonic()))
            assert set(message) == {"STATUS"}, f"unexpected {message} while waiting for STATUS ~ {pattern}"
            if re.search(pattern, message["STATUS"]):
                return message["STATUS"]

    def close(self):
        self.sock.close()


def test_notify_ready_status_reloading_stopping(procs, tmp_path, key, echo):
    target = echo()
    notify = NotifySocket(tmp_path / "notify")
    try:
        source = tcp_address(free_port())
        server = start(procs, [OUR_SPIPED, "-d", "-s", source, "-t", target.address, "-k", str(key), "-F"],
                       env=dict(os.environ, NOTIFY_SOCKET=notify.path))
        ready = notify.next_state()
        assert ready.get("READY") == "1", ready
        assert is_listening(source), "READY=1 before the pipe listens"
        entry = tcp_address(free_port())
        procs.spiped(OUR_SPIPED, "-e", entry, source, key)

        idle = open_idle_connection(entry)
        assert notify.wait_status(r"\b1 open connection\b")
        idle.close()
        assert notify.wait_status(r"\b0 open connections\b")

        before = time.monotonic_ns() // 1000
        server.send_signal(signal.SIGHUP)
        reloading = notify.next_state()
        after = time.monotonic_ns() // 1000
        assert reloading.get("RELOADING") == "1", reloading
        assert before <= int(reloading["MONOTONIC_USEC"]) <= after, (before, reloading, after)
        assert notify.next_state().get("READY") == "1"

        server.send_signal(signal.SIGTERM)
        assert notify.next_state().get("STOPPING") == "1"
        assert server.wait(timeout=10) == 0
        states = [sorted(set(m) - {"STATUS", "MONOTONIC_USEC"}) for m in notify.messages if set(m) - {"STATUS"}]
        assert states == [["READY"], ["RELOADING"], ["READY"], ["STOPPING"]]
    finally:
        notify.close()


# --- 4. socket activation ---------------------------------------------------------------------

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")


def listening_inodes(port):
    """Socket inodes of the TCP sockets listening on `port` (IPv4 table)."""
    inodes = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.append(fields[9])
    return inodes


@pytest.mark.skipif(SOCKET_ACTIVATE is None, reason="needs systemd-socket-activate")
@pytest.mark.parametrize("how", ["command line, matched by address", "config file, matched by name"])
def test_socket_activation(procs, tmp_path, key, echo, how):
    target = echo()
    decrypt_source = tcp_address(free_port())
    procs.spiped(OUR_SPIPED, "-d", decrypt_source, target.address, key)
    port = free_port()
    if how.startswith("command line"):
        # The fd name matches no pipe; the pipe's -s is the passed socket's address.
        spiped_argv = [OUR_SPIPED, "-e", "-s", tcp_address(port), "-t", decrypt_source, "-k", str(key), "-F"]
        unbound_port = None
    else:
        # The pipe is named after the fd; its own source address must then stay unbound.
        unbound_port = free_port()
        config = tmp_path / "spiped.conf"
        config.write_text(f"[web]\nmode = encrypt\nsource = {tcp_address(unbound_port)}\n"
                          f"target = {decrypt_source}\nkey = {key}\n")
        spiped_argv = [OUR_SPIPED, "--config", str(config), "-F"]
    proc = procs.start([SOCKET_ACTIVATE, "-l", f"127.0.0.1:{port}", "--fdname=web", *spiped_argv])
    wait_until(lambda: port in listening_tcp_ports() or proc.poll() is not None, what="systemd-socket-activate")
    holder = listening_inodes(port)
    assert len(holder) == 1
    # systemd-socket-activate execs spiped on the first connection, which waits in the backlog.
    assert exchange(tcp_address(port), b"through the passed socket") == b"through the passed socket"
    assert proc.poll() is None, proc.stderr_text()
    assert os.path.realpath(f"/proc/{proc.pid}/exe") == os.path.realpath(OUR_SPIPED)
    # spiped serves on the inherited descriptor 3: the same socket, not one it bound itself.
    assert os.readlink(f"/proc/{proc.pid}/fd/3") == f"socket:[{holder[0]}]"
    assert listening_inodes(port) == holder
    if unbound_port is not None:
        assert unbound_port not in listening_tcp_ports(), "the pipe bound its configured source too"
    assert exchange(tcp_address(port), b"again") == b"again"
    assert stop(proc) == 0


# --- 5. logs -------------------------------------------------------------------------------

def test_default_level_start_line_no_connection_lines_and_file_prefix(procs, key, echo):
    target = echo()
    decrypt, source, encrypt, entry = start_pair(procs, key, target.address)
    for _ in range(2):
        assert exchange(entry) == b"ping"
    assert stop(decrypt) == 0
    lines = decrypt.stderr_text().splitlines()
    assert lines, "nothing logged"
    now = time.time()
    for line in lines:
        match = FILE_PREFIX.match(line)
        assert match, f"no timestamp and severity: {line!r}"
        stamp = calendar.timegm(time.strptime(match.group(1)[:19], "%Y-%m-%dT%H:%M:%S"))
        assert abs(stamp - now) < 60, f"timestamp not in UTC, or wrong: {line!r}"
    body = [FILE_PREFIX.sub("", line, count=1) for line in lines]
    start_line = re.compile(re.escape(f"{source}: listening on {source}: decrypt -> {target.address}, "
                                      "max-connections 100, timeout 5.0 s; ") + r"(1 event loop|\d+ event loops)")
    assert start_line.fullmatch(body[0]), body[0]
    assert lines[0].split(" ", 2)[2].startswith("notice: ")
    assert not [line for line in body if "ended after" in line], "per-connection lines at the default level"
    # The second exchange's connection may not have ended inside the -d yet when SIGTERM arrives.
    stopping = re.compile(r"stopping: no new connections; draining (0 open connections|1 open connection)")
    assert [line for line in body if stopping.fullmatch(line)], body


def loop_threads(pid):
    """Names of the event-loop threads of process `pid` (they are called spiped-loopN)."""
    names = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
        except OSError:
            continue
        if name.startswith("spiped-loop"):
            names.append(name)
    return sorted(names)


@pytest.mark.skipif(not shutil.which("taskset"), reason="needs taskset (util-linux)")
def test_event_loops_follow_the_cpu_affinity(procs, key, echo):
    """One event loop per CPU the process may run on (taskset, a cpuset, CPUAffinity=), not per
    CPU of the machine; the start line says how many."""
    target = echo()
    cpus = sorted(os.sched_getaffinity(0))
    for allowed in ([cpus[-1]], cpus):
        source = tcp_address(free_port())
        proc = procs.start(["taskset", "-c", ",".join(map(str, allowed)), OUR_SPIPED, "-d", "-s", source,
                            "-t", target.address, "-k", str(key), "-F"])
        wait_listening(proc, source)
        wait_until(lambda: len(loop_threads(proc.pid)) >= len(allowed) or proc.poll() is not None,
                   what=f"{len(allowed)} event loops")
        time.sleep(0.2)     # no further loop may appear
        assert len(loop_threads(proc.pid)) == len(allowed), (allowed, loop_threads(proc.pid))
        plural = "" if len(allowed) == 1 else "s"
        assert f"; {len(allowed)} event loop{plural}" in proc.stderr_text().splitlines()[0]
        assert stop(proc) == 0


def test_journald_stream_gets_priority_prefix_without_timestamp(procs, tmp_path, key, echo):
    target = echo()
    stderr_path = tmp_path / "journal.stderr"
    stderr_path.touch()
    identity = os.stat(stderr_path)
    source = tcp_address(free_port())
    proc = start(procs, [OUR_SPIPED, "-d", "-s", source, "-t", target.address, "-k", str(key), "-F"],
                 env=dict(os.environ, JOURNAL_STREAM=f"{identity.st_dev}:{identity.st_ino}"), stderr_path=stderr_path)
    wait_listening(proc, source)
    assert stop(proc) == 0
    lines = proc.stderr_text().splitlines()
    assert lines[0].startswith(f"<5>spiped: {source}: listening on {source}: decrypt -> "), lines[0]
    assert all(re.match(r"<[0-7]>spiped: ", line) for line in lines), lines
    assert not any(FILE_PREFIX.search(line) for line in lines)


def test_info_level_one_line_per_connection_with_byte_counts(procs, key, echo):
    target = echo(handler=reply_third)
    decrypt, source, encrypt, entry = start_pair(procs, key, target.address, "--log-level", "info")
    sizes = [10, 2000, 70000]
    for size in sizes:
        assert len(transfer(entry, b"a" * size)) == reply_size(size)

    def ended():
        return [ENDED.search(line) for line in decrypt.stderr_text().splitlines() if "ended after" in line]
    wait_until(lambda: len(ended()) >= len(sizes), what="one line per connection")
    assert stop(decrypt) == 0
    lines = ended()
    assert all(lines) and len(lines) == len(sizes), decrypt.stderr_text()
    assert sorted((int(m["to_target"]), int(m["back"])) for m in lines) == [(s, reply_size(s)) for s in sizes]
    assert {m["pipe"] for m in lines} == {source}
    assert all(m["peer"].startswith("127.0.0.1:") and float(m["seconds"]) < 10 for m in lines)
    assert {m["why"] for m in lines} == {"closed by both sides"}
    # The -e in front runs at the default level: no per-connection lines there.
    assert "ended after" not in encrypt.stderr_text()


def test_error_level_hides_start_and_stop_lines(procs, key, echo):
    target = echo()
    decrypt, source, _, entry = start_pair(procs, key, target.address, "--log-level", "error")
    assert exchange(entry) == b"ping"
    assert stop(decrypt) == 0
    assert decrypt.stderr_text() == ""


def test_config_file_log_level_and_reload_lines(procs, tmp_path, key, echo):
    target = echo()
    alpha, beta = tcp_address(free_port()), tcp_address(free_port())
    config = tmp_path / "spiped.conf"

    def pipe(name, source, extra=""):
        return f"[{name}]\nmode = decrypt\nsource = {source}\ntarget = {target.address}\nkey = {key}\n{extra}"
    config.write_text("log-level = info\n" + pipe("alpha", alpha))
    proc = procs.start([OUR_SPIPED, "--config", str(config), "-F"])
    wait_listening(proc, alpha)
    entry = tcp_address(free_port())
    procs.spiped(OUR_SPIPED, "-e", entry, alpha, key)
    assert exchange(entry, b"hello") == b"hello"
    wait_until(lambda: "alpha: connection from " in proc.stderr_text(), what="the per-connection line")

    def body():
        return [FILE_PREFIX.sub("", line, count=1) for line in proc.stderr_text().splitlines()]
    assert any(line.startswith(f"alpha: listening on {alpha}: decrypt -> ") for line in body())
    assert any(ENDED.fullmatch(line) and line.startswith("alpha: ") for line in body())

    config.write_text("log-level = info\n" + pipe("alpha", alpha, "timeout = 3\n") + pipe("beta", beta))
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: is_listening(beta), what="beta listening after the reload")
    wait_until(lambda: any(line.startswith("reload:") for line in body()), what="the reload line")
    assert "reload: 1 added (beta), 0 removed, 1 updated (alpha), 0 unchanged" in body()
    # A pipe the reload added gets its start-up line too.
    assert any(line.startswith(f"beta: listening on {beta}: decrypt -> {target.address}, ") for line in body())
    proc.send_signal(signal.SIGHUP)
    wait_until(lambda: sum(line.startswith("reload:") for line in body()) == 2, what="the second reload line")
    assert "reload: 0 added, 0 removed, 0 updated, 2 unchanged (alpha, beta)" in body()
    assert stop(proc) == 0


def test_wrong_key_messages_on_both_ends(procs, key, other_key, echo):
    target = echo()
    decrypt, source, encrypt, entry = start_pair(procs, key, target.address, client_key=other_key)
    assert exchange(entry) == b""
    wait_until(lambda: "handshake refused by the server" in encrypt.stderr_text(), what="the -e's message")
    wait_until(lambda: "did not authenticate" in decrypt.stderr_text(), what="the -d's message")
    client_line = next(line for line in encrypt.stderr_text().splitlines() if "handshake refused" in line)
    server_line = next(line for line in decrypt.stderr_text().splitlines() if "did not authenticate" in line)
    assert f" {entry}: connection from 127.0.0.1:" in client_line
    assert "the key files probably differ (or the server requires forward secrecy), or the target is not a spiped -d" in client_line
    assert f" {source}: " in server_line
    assert "handshake did not authenticate (a different key, or not a spiped client)" in server_line
    # A network cut reads differently: no target at all.
    dead_entry = tcp_address(free_port())
    dead = procs.spiped(OUR_SPIPED, "-e", dead_entry, tcp_address(free_port()), key)
    assert exchange(dead_entry) == b""
    wait_until(lambda: "warning: " in dead.stderr_text(), what="the -e's connect failure")
    assert "handshake refused" not in dead.stderr_text()


# --- 6. the drain -------------------------------------------------------------------------------

def test_drain_timeout_bounds_the_drain(procs, key, echo):
    target = echo()
    decrypt, source, _, entry = start_pair(procs, key, target.address, "--drain-timeout", "1")
    idle = open_idle_connection(entry)
    began = time.monotonic()
    decrypt.send_signal(signal.SIGTERM)
    decrypt.wait(timeout=10)
    elapsed = time.monotonic() - began
    idle.close()
    assert 0.8 <= elapsed <= 1.5, f"exited {elapsed:.2f} s after SIGTERM with --drain-timeout 1"
    assert "drain timeout reached; exiting with 1 connection open" in decrypt.stderr_text()


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_second_stop_signal_ends_the_drain(procs, key, echo, second):
    target = echo()
    decrypt, source, _, entry = start_pair(procs, key, target.address)
    idle = open_idle_connection(entry)
    decrypt.send_signal(signal.SIGTERM)
    wait_until(lambda: not is_listening(source), what="the listener closed")
    time.sleep(1.5)
    assert decrypt.poll() is None, "the first SIGTERM did not drain an open connection"
    idle.sendall(b"y")
    assert idle.recv(1) == b"y", "the open connection stopped working during the drain"
    began = time.monotonic()
    decrypt.send_signal(second)
    decrypt.wait(timeout=10)
    elapsed = time.monotonic() - began
    idle.close()
    assert elapsed < 1.0, f"exited {elapsed:.2f} s after the second signal"
    assert "second stop signal: exiting now with 1 connection open" in decrypt.stderr_text()


# --- 7. Unix-socket source mode and group ---------------------------------------------------

@pytest.fixture
def scratch_group():
    """A group created for the test (groupadd) and deleted afterwards."""
    if os.geteuid() != 0 or shutil.which("groupadd") is None:
        pytest.skip("needs root and groupadd")
    name = "spt" + os.urandom(4).hex()
    subprocess.run(["groupadd", name], check=True, capture_output=True)
    try:
        yield name, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["groupdel", name], capture_output=True)


@pytest.mark.parametrize("how", ["options", "config file"])
def test_unix_socket_source_mode_and_group(procs, tmp_path, key, echo, scratch_group, how):
    group, gid = scratch_group
    target = echo()
    decrypt_source = tcp_address(free_port())
    procs.spiped(OUR_SPIPED, "-d", decrypt_source, target.address, key)
    path = str(tmp_path / "app.sock")
    if how == "options":
        proc = procs.start([OUR_SPIPED, "-e", "-s", path, "-t", decrypt_source, "-k", str(key), "-F",
                            "--socket-mode", "0660", "--socket-group", group])
    else:
        config = tmp_path / "spiped.conf"
        config.write_text(f"[app]\nmode = encrypt\nsource = {path}\ntarget = {decrypt_source}\nkey = {key}\n"
                          f"socket-mode = 0660\nsocket-group = {group}\n")
        proc = procs.start([OUR_SPIPED, "--config", str(config), "-F"])
    wait_listening(proc, path)
    status = os.stat(path)
    assert stat.S_ISSOCK(status.st_mode)
    assert stat.S_IMODE(status.st_mode) == 0o660, oct(stat.S_IMODE(status.st_mode))
    assert status.st_gid == gid
    assert exchange(path, b"over the unix socket") == b"over the unix socket"
    assert stop(proc) == 0
