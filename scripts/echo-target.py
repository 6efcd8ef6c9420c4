#!/usr/bin/env python3
"""A tiny stand-in server for scripts/demo when redis-server is not installed, plus the two
client actions the demo needs. Standard library only.

  echo-target.py serve --port P        echo every byte back, on 127.0.0.1:P (until killed)
  echo-target.py send --port P TEXT    send TEXT plus a newline, print what comes back
  echo-target.py probe --port P TEXT --forbidden ANSWER --limit S
        connect *without* spiped, send TEXT, read until the far end closes; exit 0 if the
        connection was closed within S seconds and ANSWER never came back, 1 otherwise
  echo-target.py free-ports N          print N different TCP ports on 127.0.0.1, free right now
  echo-target.py wait-listening --port P [--limit S] [--pid PID]
        wait until something listens on 127.0.0.1:P, without connecting to it (an spiped -e
        would open a pipe for a test connection); exit 1 after S seconds or if PID exits
"""

import argparse
import os
import socket
import socketserver
import sys
import time


class EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(65536)
            if not data:
                break
            self.request.sendall(data)
        # Pass the end of stream on, as a well-behaved server behind spiped does.
        try:
            self.request.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class EchoServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(port: int) -> int:
    with EchoServer(("127.0.0.1", port), EchoHandler) as server:
        server.serve_forever()
    return 0


def send(port: int, text: str, limit: float) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(text.encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    sys.stdout.write(reply.decode(errors="replace"))
    return 0 if reply else 1


def probe(port: int, text: str, forbidden: str, limit: float) -> int:
    start = time.monotonic()
    received = b""
    how = "still open"
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(text.encode().decode("unicode_escape").encode("latin-1"))
        while time.monotonic() - start < limit:
            sock.settimeout(max(0.01, limit - (time.monotonic() - start)))
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                how = "reset by the server"
                break
            if not chunk:
                how = "closed by the server"
                break
            received += chunk
    seconds = time.monotonic() - start
    answered = forbidden.encode() in received
    note = " of handshake data, not an answer" if received and not answered else ""
    print(f"connection {how} after {seconds:.1f} s; received {len(received)} bytes{note}; "
          f"{'GOT' if answered else 'no'} {forbidden!r}")
    return 0 if how != "still open" and not answered else 1


def listening_ports() -> set:
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def wait_listening(port: int, limit: float, pid: int | None) -> int:
    if not os.path.exists("/proc/net/tcp"):
        time.sleep(1)  # No socket table to read (not Linux): give the program a moment.
        return 0
    deadline = time.monotonic() + limit
    while port not in listening_ports():
        if pid is not None and process_gone(pid):
            print(f"the program that should listen on 127.0.0.1:{port} has exited",
                  file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            print(f"nothing is listening on 127.0.0.1:{port} after {limit} s", file=sys.stderr)
            return 1
        time.sleep(0.05)
    return 0


def free_ports(count: int) -> int:
    # All probe sockets stay bound until every port is chosen, so the ports differ.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe_socket in sockets:
            probe_socket.bind(("127.0.0.1", 0))
        print(" ".join(str(s.getsockname()[1]) for s in sockets))
    finally:
        for probe_socket in sockets:
            probe_socket.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = parser.add_subparsers(dest="action", required=True)
    for name in ("serve", "send", "probe", "wait-listening"):
        sub = actions.add_parser(name)
        sub.add_argument("--port", type=int, required=True)
        sub.add_argument("--limit", type=float, default=10.0)
        if name in ("send", "probe"):
            sub.add_argument("text")
        if name == "probe":
            sub.add_argument("--forbidden", required=True)
        if name == "wait-listening":
            sub.add_argument("--pid", type=int, help="give up early if this process exits")
    actions.add_parser("free-ports").add_argument("count", type=int)
    args = parser.parse_args()
    if args.action == "serve":
        return serve(args.port)
    if args.action == "send":
        return send(args.port, args.text, args.limit)
    if args.action == "probe":
        return probe(args.port, args.text, args.forbidden, args.limit)
    if args.action == "wait-listening":
        return wait_listening(args.port, args.limit, args.pid)
    return free_ports(args.count)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
