#!/usr/bin/env python3
"""A WAN emulator for tests and benchmarks: a TCP relay that delays every byte by half a
round-trip time in each direction (the kernel here has no netem).

    scripts/wan_relay.py LISTEN_PORT TARGET_HOST:PORT RTT_MS [--rate BYTES_PER_S]

What it models, per accepted connection:
- the connection to the target is opened when the client connects, and the first byte the
  client may receive is delayed by RTT/2 like every other, so connect + request + answer costs
  what it costs over a link with that RTT apart from the SYN round trip (the relay's own
  loopback handshake is instant): callers that want the SYN cost add one RTT to "connect";
- bytes keep their order; each chunk is released RTT/2 after it arrived;
- a FIN (half-close) is forwarded after the same delay, a reset as a reset;
- an optional rate limit per direction (token bucket over the delayed stream).
Tooling only: not part of the product. Import `WanRelay` or run it as a script.
"""
import heapq
import socket
import struct
import sys
import threading
import time


# Markers in a direction's queue, distinct from any data chunk (bytes).
_FIN = object()
_RESET = object()


class _Direction:
    """One direction of one connection: reads from `source`, writes to `sink` after `delay`."""

    def __init__(self, source, sink, delay, rate):
        self.source, self.sink, self.delay, self.rate = source, sink, delay, rate
        self.queue = []          # (release time, sequence, bytes, _FIN or _RESET)
        self.sequence = 0
        self.condition = threading.Condition()
        self.done = False

    def reader(self):
        while True:
            try:
                data = self.source.recv(65536)
                kind = data if data else _FIN
            except OSError:
                kind = _RESET
                data = None
            with self.condition:
                heapq.heappush(self.queue, (time.monotonic() + self.delay, self.sequence, kind))
                self.sequence += 1
                self.condition.notify()
            if not data:
                return

    def writer(self):
        budget_time = time.monotonic()
        while True:
            with self.condition:
                while not self.queue:
                    self.condition.wait()
                release, _, kind = self.queue[0]
                now = time.monotonic()
                if release > now:
                    self.condition.wait(release - now)
                    continue
                heapq.heappop(self.queue)
            try:
                if kind is _FIN:
                    self.sink.shutdown(socket.SHUT_WR)
                    return
                if kind is _RESET:
                    self.sink.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.sink.close()
                    return
                if self.rate:
                    # Token bucket: this chunk may leave only when the link has carried the rest.
                    budget_time = max(budget_time, time.monotonic()) + len(kind) / self.rate
                    wait = budget_time - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                self.sink.sendall(kind)
            except OSError:
                return


class WanRelay:
    """Listens on 127.0.0.1:`port` (0: any free port; see `.port`) and relays every connection
    to `target` (host, port) with `rtt_ms` of round-trip delay."""

    def __init__(self, target, rtt_ms, port=0, rate=None):
        self.target = target
        self.delay = rtt_ms / 2000.0
        self.rate = rate
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            for sock in (client, server):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                direction = _Direction(source, sink, self.delay, self.rate)
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
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[2].rsplit(":", 1)
    rate = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--rate" else None
    relay = WanRelay((host.strip("[]"), int(port)), float(sys.argv[3]), port=int(sys.argv[1]), rate=rate)
    print(f"relaying 127.0.0.1:{relay.port} -> {sys.argv[2]} with {sys.argv[3]} ms RTT", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        relay.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
