"""Harness of the robustness suite: processes, target servers, a tampering relay, probes.

The binary under test is OUR_SPIPED (default: the release build .build/release/spiped).
Pointing it at Debian's /usr/bin/spiped checks the harness itself against the reference.
Everything listens on 127.0.0.1; readiness is detected by polling /proc/net/tcp; every
process a test starts is killed at teardown; every wait is bounded.
"""
import functools
import hashlib
import os
import resource
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import spiped_testkit
from spiped_testkit import REPO_ROOT, ThreadedServer, free_port, kill_and_reap, shutdown_quietly
from spiped_testkit import tcp_address as address

OUR_SPIPED = os.environ.get("OUR_SPIPED", str(REPO_ROOT / ".build/release/spiped"))
# The reference spiped 1.6.2 lacks some behaviour this suite requires of ours (it exits when
# accept() fails with EMFILE, and still serves clients that arrive after SIGTERM). When the
# suite checks its own harness against the reference, those checks are expected to fail.
TESTING_THE_REFERENCE = os.path.realpath(OUR_SPIPED) == "/usr/bin/spiped"
# Optional wrapper for the binary under test, e.g. "valgrind --error-exitcode=99 -q".
SPIPED_WRAPPER = os.environ.get("SPIPED_WRAPPER", "").split()

HANDSHAKE_BYTES = 32 + 288   # each direction: nonce, then DH value and its MAC
PACKET_BYTES = 1060          # one data packet on the wire
PAYLOAD_BYTES = 1024         # largest payload of one packet


def listening_ports():
    """TCP ports in LISTEN state on this host (from /proc/net/tcp, IPv4 only)."""
    return spiped_testkit.listening_tcp_ports(tables=("/proc/net/tcp",))


# This suite polls every 10 ms (the shared default is 5 ms).
wait_until = functools.partial(spiped_testkit.wait_until, interval=0.01)


def connect(port, timeout=10.0):
    """A TCP connection to 127.0.0.1:port."""
    return spiped_testkit.connect(address(port), timeout=timeout)


def rss_kib(pid):
    """Resident set size of a process in KiB (VmRSS), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fd_count(pid):
    """Open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def read_until_closed(sock, timeout):
    """Reads until EOF or reset; returns (bytes read, 'eof' | 'reset' | 'timeout')."""
    sock.settimeout(0.2)
    data = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk
    return bytes(data), "timeout"


def reset_close(sock):
    """Closes with SO_LINGER 0, so the peer gets a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Daemon:
    """One spiped process in the foreground; its stderr goes to a file."""

    def __init__(self, directory, mode, source_port, target_port, key, *extra, binary=None,
                 limit_fds=None, wrapper=None):
        self.source_port = source_port
        self.mode = mode
        self.log_path = Path(directory) / f"spiped{mode}-{source_port}.stderr"
        self.log = open(self.log_path, "w+b")
        argv = [binary or OUR_SPIPED, mode, "-s", address(source_port), "-t", address(target_port),
                "-k", str(key), "-F", *extra]
        wrapper = SPIPED_WRAPPER if wrapper is None else wrapper
        preexec = None
        if limit_fds is not None:
            def preexec():
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit_fds, limit_fds))
        self.process = subprocess.Popen(wrapper + argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self.log,
                                        preexec_fn=preexec)
        # valgrind needs far longer to start.
        wait_until(lambda: source_port in listening_ports() or self.process.poll() is not None,
                   timeout=60 if wrapper else 30, what=f"spiped {mode} listening on {source_port}")
        assert self.process.poll() is None, f"spiped {mode} exited early: {self.stderr()}"

    @property
    def pid(self):
        return self.process.pid

    def stderr(self):
        return self.log_path.read_text(errors="replace")

    def assert_running(self):
        assert self.process.poll() is None, \
            f"spiped exited with status {self.process.returncode}: {self.stderr()}"

    def stop(self):
        kill_and_reap(self.process)
        self.log.close()


class TargetServer(ThreadedServer):
    """The service behind spiped -d: a threaded TCP server whose behaviour per connection is
    `echo` (write back what it reads), `record` (keep what it reads) or `stall` (accept and
    never read). Records every connection's bytes and whether it ended."""

    def __init__(self, behaviour="echo", port=None, receive_buffer=None):
        self.behaviour = behaviour
        self.lock = threading.Lock()
        self.received = []      # per connection: bytearray
        self.ended = []         # per connection: threading.Event
        self.held = []          # sockets kept open by `stall`
        super().__init__(address(port or 0), receive_buffer=receive_buffer)

    @property
    def connections(self):
        with self.lock:
            return len(self.received)

    def total_received(self):
        with self.lock:
            return sum(len(r) for r in self.received)

    def accepted(self, conn):
        with self.lock:
            index = len(self.received)
            self.received.append(bytearray())
            self.ended.append(threading.Event())
        if self.behaviour == "stall":
            self.held.append(conn)
            return
        threading.Thread(target=self._serve, args=(conn, index), daemon=True).start()

    def _serve(self, conn, index):
        try:
            with conn:
                while True:
                    data = conn.recv(1 << 16)
                    if not data:
                        break
                    with self.lock:
                        self.received[index] += data
                    if self.behaviour == "echo":
                        conn.sendall(data)
                if self.behaviour == "echo":
                    conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            self.ended[index].set()

    def close(self):
        super().close()
        for conn in self.held:
            conn.close()


def echo_round_trip(port, size=100_000, timeout=20.0):
    """Sends `size` random bytes to the plaintext port, half-closes, and checks that exactly
    the same bytes come back before EOF (the echo target behind the pipe)."""
    payload = os.urandom(size)
    with connect(port, timeout=timeout) as sock:
        reply = bytearray()
        failure = []

        def reader():
            try:
                data, how = read_until_closed(sock, timeout)
                reply.extend(data)
                if how != "eof":
                    failure.append(how)
            except OSError as error:
                failure.append(error)

        thread = threading.Thread(target=reader)
        thread.start()
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        thread.join(timeout + 5)
    assert not failure, f"good client: connection ended by {failure[0]} after {len(reply)} bytes"
    assert hashlib.sha256(reply).digest() == hashlib.sha256(payload).digest(), \
        f"good client: echoed {len(reply)} bytes of {size}, or different bytes"


def eventually_serves(port, within=20.0, size=100_000):
    """Retries `echo_round_trip` once a second until it succeeds or `within` seconds pass:
    after an overload the daemon may still be draining connections queued in its listen
    backlog, and a good client arriving meanwhile may be turned away once."""
    deadline = time.monotonic() + within
    while True:
        try:
            echo_round_trip(port, size=size)
            return
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class TamperingRelay(ThreadedServer):
    """A man in the middle between spiped -e (connects here) and spiped -d.

    It forwards the handshake in both directions untouched, then parses the client-to-server
    stream into 1060-byte packets and applies `damage` to the first connection:
      ("flip", k)       flip one bit in packet k,
      ("replay", k)     send packet k-1 again in place of packet k,
      ("swap", k)       send packet k+1 before packet k,
      ("cut", k)        send half of packet k, then close both directions.
    Later connections are forwarded untouched (so a good client can be served afterwards).
    """

    def __init__(self, server_port, damage):
        self.server_port = server_port
        self.damage = damage
        self.connections = 0
        self.packets_forwarded = 0     # client-to-server packets of the damaged connection
        self.damage_done = threading.Event()
        super().__init__(address(0), backlog=64)

    def accepted(self, client):
        self.connections += 1
        damage = self.damage if self.connections == 1 else None
        try:
            server = connect(self.server_port)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._pump_plain, args=(server, client), daemon=True).start()
        threading.Thread(target=self._pump_packets, args=(client, server, damage),
                         daemon=True).start()

    @staticmethod
    def _pump_plain(source, sink):
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
        except OSError:
            for s in (source, sink):
                shutdown_quietly(s)

    @staticmethod
    def _read_exactly(sock, count):
        data = bytearray()
        while len(data) < count:
            chunk = sock.recv(count - len(data))
            if not chunk:
                return bytes(data)
            data += chunk
        return bytes(data)

    def _pump_packets(self, client, server, damage):
        try:
            # The nonce first: a server may wait for it before sending its own, and the
            # client sends the rest of its handshake only after the server's nonce.
            handshake = self._read_exactly(client, 32)
            server.sendall(handshake)
            if len(handshake) == 32:
                rest = self._read_exactly(client, HANDSHAKE_BYTES - 32)
                server.sendall(rest)
                handshake += rest
            if len(handshake) < HANDSHAKE_BYTES:
                server.shutdown(socket.SHUT_WR)
                return
            kind, target_index = damage if damage else (None, -1)
            index = 0
            previous = None
            while True:
                packet = self._read_exactly(client, PACKET_BYTES)
                if len(packet) < PACKET_BYTES:
                    server.sendall(packet)
                    server.shutdown(socket.SHUT_WR)
                    return
                if index == target_index:
                    self.damage_done.set()
                    if kind == "flip":
                        damaged = bytearray(packet)
                        damaged[517] ^= 0x10
                        server.sendall(bytes(damaged))
                    elif kind == "replay":
                        server.sendall(previous)
                        server.sendall(packet)
                    elif kind == "swap":
                        following = self._read_exactly(client, PACKET_BYTES)
                        server.sendall(following)
                        server.sendall(packet)
                        index += 1
                    elif kind == "cut":
                        server.sendall(packet[:PACKET_BYTES // 2])
                        server.shutdown(socket.SHUT_RDWR)
                        client.shutdown(socket.SHUT_RDWR)
                        return
                else:
                    server.sendall(packet)
                    if damage:
                        self.packets_forwarded += 1
                previous = packet
                index += 1
        except OSError:
            for s in (client, server):
                shutdown_quietly(s)
