#!/usr/bin/env python3
"""A WAN emulator for tests and benchmarks: a TCP relay that delays every byte by half a
round-trip time in each direction (the kernel here has no netem).

    scripts/wan_relay.py LISTEN_PORT TARGET_HOST:PORT RTT_MS [--rate BYTES_PER_S]
                         [--bandwidth BITS_PER_S] [--window BYTES]

What it models, per accepted connection:
- the connection to the target is opened when the client connects, and the first byte the
  client may receive is delayed by RTT/2 like every other, so connect + request + answer costs
  what it costs over a link with that RTT apart from the SYN round trip (the relay's own
  loopback handshake is instant): callers that want the SYN cost add one RTT to "connect";
- bytes keep their order; each chunk is released RTT/2 after it arrived (plus, with a rate
  limit, the time it waits behind earlier chunks and takes to serialize at that rate);
- a bounded link: per direction at most `window` bytes are in flight, counted from the moment
  the relay reads them from the sender until their emulated acknowledgement is back, which is
  RTT/2 after the receiving socket took them. A link of bandwidth B and round trip RTT holds
  B x RTT bytes, so `window` defaults to that (B = --rate, else --bandwidth, 1 Gbit/s by default;
  at least 256 KiB). When the window is full the relay stops reading, the sender's socket
  buffer fills and its writes block; when the receiver does not read, its socket buffer fills,
  the relay's writes block, no acknowledgement comes back and the window stays full. The
  relay's own sockets have fixed 256 KiB buffers, so what it holds per direction is bounded by
  the window plus those buffers, whatever the sender pushes;
- a FIN (half-close) is forwarded after the same delay, a reset as a reset.
What it does not model: each leg is a loopback TCP connection that acknowledges at once, so
the endpoints' own TCP windows (congestion window, the receiver's advertised window, buffer
autotuning driven by the RTT) never see the round trip; a bulk stream through the relay is
bounded by the link's window and bandwidth, not by the kernel's. scripts/wan_link.py (network
namespaces and TUN devices) runs TCP end to end across the delay for that. No loss, jitter or
reordering.
Tooling only: not part of the product. Import `WanRelay` or run it as a script.
"""
import collections
import socket
import struct
import sys
import threading
import time


# Markers in a direction's queue, distinct from any data chunk (bytes).
_FIN = object()
_RESET = object()

CHUNK = 65536
# SO_RCVBUF / SO_SNDBUF of the relay's own sockets (the kernel doubles it for bookkeeping).
RELAY_SOCKET_BUFFER = 256 * 1024
MINIMUM_WINDOW = 256 * 1024


class _Direction:
    """One direction of one connection: reads from `source` while fewer than `window` bytes are
    in flight, writes to `sink` after `delay` (and serialization at `rate` bytes/s, if set)."""

    def __init__(self, source, sink, delay, rate, window):
        self.source, self.sink, self.delay, self.rate, self.window = source, sink, delay, rate, window
        self.queue = collections.deque()     # (release time, bytes | _FIN | _RESET), in order
        self.acknowledgements = collections.deque()   # (time the ack is back, byte count)
        self.in_flight = 0                   # read from source, acknowledgement not back yet
        self.most_in_flight = 0
        self.link_free = 0.0                 # with a rate: when the link has sent what it holds
        self.condition = threading.Condition()

    def _retire_acknowledgements(self, now):
        while self.acknowledgements and self.acknowledgements[0][0] <= now:
            self.in_flight -= self.acknowledgements.popleft()[1]

    def _wait_for_window(self):
        """Blocks until the window has room; returns how many bytes may be read."""
        with self.condition:
            while True:
                now = time.monotonic()
                self._retire_acknowledgements(now)
                room = self.window - self.in_flight
                if room > 0:
                    return min(CHUNK, room)
                timeout = self.acknowledgements[0][0] - now if self.acknowledgements else None
                self.condition.wait(timeout)

    def reader(self):
        while True:
            room = self._wait_for_window()
            try:
                data = self.source.recv(room)
                kind = data if data else _FIN
            except OSError:
                kind = _RESET
                data = None
            with self.condition:
                now = time.monotonic()
                release = now + self.delay
                if data:
                    if self.rate:
                        self.link_free = max(self.link_free, now) + len(data) / self.rate
                        release = self.link_free + self.delay
                    self.in_flight += len(data)
                    self.most_in_flight = max(self.most_in_flight, self.in_flight)
                if self.queue:
                    release = max(release, self.queue[-1][0])
                self.queue.append((release, kind))
                self.condition.notify_all()
            if not data:
                return

    def writer(self):
        while True:
            with self.condition:
                while not self.queue:
                    self.condition.wait()
                release, kind = self.queue[0]
                now = time.monotonic()
                if release > now:
                    self.condition.wait(release - now)
                    continue
                self.queue.popleft()
            try:
                if kind is _FIN:
                    self.sink.shutdown(socket.SHUT_WR)
                    return
                if kind is _RESET:
                    self.sink.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.sink.close()
                    return
                self.sink.sendall(kind)      # blocks while the receiver's buffer is full
            except OSError:
                return
            with self.condition:
                self.acknowledgements.append((time.monotonic() + self.delay, len(kind)))
                self.condition.notify_all()


class WanRelay:
    """Listens on 127.0.0.1:`port` (0: any free port; see `.port`) and relays every connection
    to `target` (host, port) with `rtt_ms` of round-trip delay. `rate` (bytes/s) limits each
    direction; `bandwidth` (bits/s, default 1 Gbit/s, used when there is no `rate`) only sizes
    the window; `window` (bytes in flight per direction) defaults to bandwidth x RTT."""

    def __init__(self, target, rtt_ms, port=0, rate=None, bandwidth=1e9, window=None):
        self.target = target
        self.delay = rtt_ms / 2000.0
        self.rate = rate
        link_rate = rate or bandwidth / 8.0
        self.window = int(window or max(MINIMUM_WINDOW, link_rate * rtt_ms / 1000.0))
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._fix_buffers(self.listener)     # inherited by accepted sockets
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        self.directions = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @staticmethod
    def _fix_buffers(sock):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RELAY_SOCKET_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RELAY_SOCKET_BUFFER)

    def most_in_flight(self):
        """The most bytes any direction of any connection has held in flight so far."""
        return max((direction.most_in_flight for direction in self.directions), default=0)

    def _accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.socket()
            try:
                self._fix_buffers(server)
                server.settimeout(10)
                server.connect(self.target)
            except OSError:
                server.close()
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                direction = _Direction(source, sink, self.delay, self.rate, self.window)
                self.directions.append(direction)
                threading.Thread(target=direction.reader, daemon=True).start()
                threading.Thread(target=direction.writer, daemon=True).start()

    def close(self):
        try:
            self.listener.close()
        except OSError:
            pass
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("listen_port", type=int)
    parser.add_argument("target", help="HOST:PORT")
    parser.add_argument("rtt_ms", type=float)
    parser.add_argument("--rate", type=float, help="bytes per second per direction (default: no limit)")
    parser.add_argument("--bandwidth", type=float, default=1e9,
                        help="bits per second that size the window when there is no --rate (default 1e9)")
    parser.add_argument("--window", type=int, help="bytes in flight per direction (default: bandwidth x RTT)")
    arguments = parser.parse_args()
    host, port = arguments.target.rsplit(":", 1)
    relay = WanRelay((host.strip("[]"), int(port)), arguments.rtt_ms, port=arguments.listen_port,
                     rate=arguments.rate, bandwidth=arguments.bandwidth, window=arguments.window)
    print(f"relaying 127.0.0.1:{relay.port} -> {arguments.target} with {arguments.rtt_ms} ms RTT, "
          f"window {relay.window} bytes", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
