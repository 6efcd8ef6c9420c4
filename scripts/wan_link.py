#!/usr/bin/env python3
"""A packet-level WAN link for bulk measurements: two network namespaces joined by a pair of TUN
devices, and this process between them, which holds every IP packet for RTT/2 each way and
serializes it at a configured bandwidth behind a bounded queue (tail drop).

    scripts/wan_link.py RTT_MS [--bandwidth BITS_PER_S] [--seconds N]

Unlike scripts/wan_relay.py (a TCP relay: each leg is a loopback connection that acknowledges
at once), the kernel's TCP runs end to end across this link and sees the round trip: its
congestion window, the receiver's advertised window, send/receive buffer autotuning and a
program's SO_SNDBUF/SO_RCVBUF all limit a stream as they would over a real path. What it does not
model: loss other than the bounded queue's tail drop, jitter, reordering; the MTU is 65000 (fewer
packets for this Python forwarder to move; TCP's window arithmetic is per byte, so the window
figures are unaffected, the segment count is not realistic).

Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and /dev/net/tun. Tooling only: not part of the
product. As a module:

    with WanLink(rtt_ms=80) as link:
        link.run("a", ["spiped", "-e", ...])    # a process in the client namespace
        link.address("b")                       # 10.x.y.2: where "a" reaches "b"
"""
import collections
import ctypes
import fcntl
import os
import struct
import subprocess
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
MTU = 65000
DEVICE = "wan0"


def _ip(*arguments):
    subprocess.run(["ip", *arguments], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _open_tun_in(namespace):
    """Opens a TUN device named DEVICE inside `namespace` (on a short-lived thread: setns changes
    only the calling thread's network namespace)."""
    result = {}

    def work():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{namespace}") as handle:
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
            fd = os.open("/dev/net/tun", os.O_RDWR)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", DEVICE.encode(), IFF_TUN | IFF_NO_PI))
            result["fd"] = fd
        except OSError as error:
            result["error"] = error
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["fd"]


class _Way:
    """One direction: packets read from `source` leave `destination` after queueing, serialization
    at `rate` bytes/s and `delay` seconds of propagation; a packet that finds more than
    `limit` bytes waiting is dropped."""

    def __init__(self, source, destination, delay, rate, limit):
        self.source, self.destination = source, destination
        self.delay, self.rate, self.limit = delay, rate, limit
        self.queue = collections.deque()      # (due, packet), in order
        self.link_free = 0.0
        self.condition = threading.Condition()
        self.dropped = 0
        self.most_queued = 0
        self.stopping = False

    def read_loop(self):
        while not self.stopping:
            try:
                packet = os.read(self.source, MTU + 64)
            except OSError:
                return
            now = time.monotonic()
            with self.condition:
                waiting = max(0.0, self.link_free - now) * self.rate   # bytes still to serialize
                if waiting + len(packet) > self.limit:
                    self.dropped += 1
                    continue
                self.most_queued = max(self.most_queued, int(waiting + len(packet)))
                self.link_free = max(now, self.link_free) + len(packet) / self.rate
                self.queue.append((self.link_free + self.delay, packet))
                self.condition.notify()

    def write_loop(self):
        while True:
            with self.condition:
                while not self.queue and not self.stopping:
                    self.condition.wait()
                if self.stopping:
                    return
                due, packet = self.queue[0]
                now = time.monotonic()
                if due > now:
                    self.condition.wait(due - now)
                    continue
                self.queue.popleft()
            try:
                os.write(self.destination, packet)
            except OSError:
                pass


class WanLink:
    """Namespaces "a" (10.N.M.1) and "b" (10.N.M.2) joined by a link of `rtt_ms` round trip and
    `bandwidth` bits/s each way, with a bottleneck queue of `queue_bytes` (default: one
    bandwidth-delay product)."""

    def __init__(self, rtt_ms, bandwidth=1e9, queue_bytes=None):
        self.rtt = rtt_ms / 1000.0
        self.rate = bandwidth / 8.0
        self.queue_bytes = int(queue_bytes or max(256 * 1024, self.rate * self.rtt))
        tag = f"{os.getpid() % 100000}x{id(self) % 997}"
        self.namespaces = {"a": f"spw{tag}a", "b": f"spw{tag}b"}
        subnet = 10 + os.getpid() % 200, id(self) % 250
        self.addresses = {"a": f"10.{subnet[0]}.{subnet[1]}.1", "b": f"10.{subnet[0]}.{subnet[1]}.2"}
        self.ways = []
        self.fds = []
        self.processes = []

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *_):
        self.stop()

    def start(self):
        try:
            for side, namespace in self.namespaces.items():
                _ip("netns", "add", namespace)
                self.fds.append(_open_tun_in(namespace))
                _ip("-n", namespace, "link", "set", "lo", "up")
                _ip("-n", namespace, "addr", "add", f"{self.addresses[side]}/30", "dev", DEVICE)
                _ip("-n", namespace, "link", "set", DEVICE, "mtu", str(MTU), "up")
        except (OSError, subprocess.CalledProcessError):
            self.stop()
            raise
        a, b = self.fds
        for source, destination in ((a, b), (b, a)):
            way = _Way(source, destination, self.rtt / 2, self.rate, self.queue_bytes)
            self.ways.append(way)
            threading.Thread(target=way.read_loop, daemon=True).start()
            threading.Thread(target=way.write_loop, daemon=True).start()
        return self

    def address(self, side):
        """The IPv4 address of namespace `side` ("a" or "b") on the link."""
        return self.addresses[side]

    def command(self, side, argv):
        """`argv` prefixed to run inside namespace `side`."""
        return ["ip", "netns", "exec", self.namespaces[side], *argv]

    def run(self, side, argv, **popen):
        """Starts `argv` inside namespace `side`; it is killed by stop()."""
        process = subprocess.Popen(self.command(side, argv), **popen)
        self.processes.append(process)
        return process

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        for way in self.ways:
            way.stopping = True
            with way.condition:
                way.condition.notify_all()
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def available():
    """Whether this process may build a link (root, /dev/net/tun, `ip netns`)."""
    return os.geteuid() == 0 and os.path.exists("/dev/net/tun") and subprocess.run(
        ["ip", "netns", "list"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rtt_ms", type=float)
    parser.add_argument("--bandwidth", type=float, default=1e9, help="bits per second each way (default 1e9)")
    parser.add_argument("--seconds", type=float, default=3600)
    arguments = parser.parse_args()
    with WanLink(arguments.rtt_ms, arguments.bandwidth) as link:
        print(f"namespaces {link.namespaces['a']} ({link.address('a')}) and {link.namespaces['b']} "
              f"({link.address('b')}), {arguments.rtt_ms} ms RTT", flush=True)
        try:
            time.sleep(arguments.seconds)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
