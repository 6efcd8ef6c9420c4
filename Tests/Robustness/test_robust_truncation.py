"""A stream cut in the middle of a packet, in each direction: the receiving spiped delivers the
verified packets before the cut, then ends its plaintext side with a reset, not a FIN, so the
application (or the target) cannot take the cut stream for a complete one."""
import os
import socket
import threading
import time

import pytest

from robust_harness import (HANDSHAKE_BYTES, PACKET_BYTES, PAYLOAD_BYTES, connect, free_port,
                            wait_until)
from spiped_testkit import ThreadedServer, shutdown_quietly
from spiped_testkit import tcp_address as address

WHOLE_PACKETS = 3


def read_exactly(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


class CuttingRelay(ThreadedServer):
    """Between spiped -e and spiped -d. In direction `cut` ("to-server" or "to-client") it
    forwards the handshake and WHOLE_PACKETS packets, then half a packet, then a FIN (shutdown
    of writing), as a network cut or an attacker with a FIN would; the other direction is
    forwarded untouched."""

    def __init__(self, server_port, cut):
        self.server_port = server_port
        self.cut = cut
        self.cut_done = threading.Event()
        super().__init__(address(0), backlog=16)

    def accepted(self, client):
        server = connect(self.server_port)
        for sock in (client, server):
            sock.settimeout(None)
        if self.cut == "to-server":
            threading.Thread(target=self._cutting, args=(client, server, HANDSHAKE_BYTES), daemon=True).start()
            threading.Thread(target=self._plain, args=(server, client), daemon=True).start()
        else:
            threading.Thread(target=self._plain, args=(client, server), daemon=True).start()
            threading.Thread(target=self._cutting, args=(server, client, HANDSHAKE_BYTES), daemon=True).start()

    @staticmethod
    def _plain(source, sink):
        try:
            while True:
                data = source.recv(1 << 16)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
        except OSError:
            shutdown_quietly(sink)

    def _cutting(self, source, sink, handshake_bytes):
        try:
            # The handshake in two steps (nonce, then the rest), as the protocol interleaves.
            sink.sendall(read_exactly(source, 32))
            sink.sendall(read_exactly(source, handshake_bytes - 32))
            for _ in range(WHOLE_PACKETS):
                sink.sendall(read_exactly(source, PACKET_BYTES))
            sink.sendall(read_exactly(source, PACKET_BYTES)[:PACKET_BYTES // 2])
            sink.shutdown(socket.SHUT_WR)
            self.cut_done.set()
            # Keep draining the source so the sender is not blocked.
            while source.recv(1 << 16):
                pass
        except OSError:
            shutdown_quietly(sink)


class RecordingTarget(ThreadedServer):
    """Keeps what each connection sends and how it ended: 'eof', 'reset' or None (open)."""

    def __init__(self):
        self.received = bytearray()
        self.ending = None
        self.ended = threading.Event()
        super().__init__(address(0))

    def accepted(self, conn):
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    self.ending = "eof"
                    break
                self.received += data
        except ConnectionResetError:
            self.ending = "reset"
        finally:
            self.ended.set()
            conn.close()


class ReplyingTarget(ThreadedServer):
    """Sends `reply` (in packet-sized writes) as soon as a connection arrives, then waits."""

    def __init__(self, reply):
        self.reply = reply
        self.held = []
        super().__init__(address(0))

    def accepted(self, conn):
        self.held.append(conn)
        for offset in range(0, len(self.reply), PAYLOAD_BYTES):
            conn.sendall(self.reply[offset:offset + PAYLOAD_BYTES])
            time.sleep(0.02)    # one packet per write


def messages():
    return os.urandom(PAYLOAD_BYTES * (WHOLE_PACKETS + 1))


@pytest.mark.beyond_reference
def test_cut_towards_the_server_resets_the_target(daemons, key):
    """-d receives three packets and half of a fourth, then a FIN: the target gets the three
    verified payloads and then a reset."""
    target = RecordingTarget()
    try:
        decrypt = daemons("-d", free_port(), target.port, key, "-o", "2")
        relay = CuttingRelay(decrypt.source_port, "to-server")
        encrypt = daemons("-e", free_port(), relay.port, key, "-o", "2")
        payload = messages()
        with connect(encrypt.source_port) as client:
            for index in range(WHOLE_PACKETS + 1):
                client.sendall(payload[index * PAYLOAD_BYTES:(index + 1) * PAYLOAD_BYTES])
                time.sleep(0.05)        # one packet per message
            assert target.ended.wait(10), "the target connection never ended"
        assert relay.cut_done.wait(5), "the relay never made its cut"  # its thread may lag behind spiped's reaction
        assert bytes(target.received) == payload[:WHOLE_PACKETS * PAYLOAD_BYTES], \
            f"target got {len(target.received)} bytes, expected the {WHOLE_PACKETS} verified packets"
        assert target.ending == "reset", f"the target saw {target.ending!r}, not a reset: {decrypt.stderr()}"
        wait_until(lambda: "cut in the middle of a packet" in decrypt.stderr(), timeout=5, what="the log line")
        decrypt.assert_running()
        relay.close()
    finally:
        target.close()


@pytest.mark.beyond_reference
def test_cut_towards_the_client_resets_the_application(daemons, key):
    """-e receives three packets and half of a fourth from the -d side, then a FIN: the
    application gets the three verified payloads and then a reset."""
    payload = messages()
    target = ReplyingTarget(payload)
    try:
        decrypt = daemons("-d", free_port(), target.port, key, "-o", "2")
        relay = CuttingRelay(decrypt.source_port, "to-client")
        encrypt = daemons("-e", free_port(), relay.port, key, "-o", "2")
        with connect(encrypt.source_port) as client:
            received = bytearray()
            ending = None
            client.settimeout(10)
            try:
                while True:
                    data = client.recv(1 << 16)
                    if not data:
                        ending = "eof"
                        break
                    received += data
            except ConnectionResetError:
                ending = "reset"
        assert relay.cut_done.wait(5), "the relay never made its cut"  # its thread may lag behind spiped's reaction
        assert bytes(received) == payload[:WHOLE_PACKETS * PAYLOAD_BYTES], \
            f"application got {len(received)} bytes, expected the {WHOLE_PACKETS} verified packets"
        assert ending == "reset", f"the application saw {ending!r}, not a reset: {encrypt.stderr()}"
        wait_until(lambda: "cut in the middle of a packet" in encrypt.stderr(), timeout=5, what="the log line")
        encrypt.assert_running()
        relay.close()
    finally:
        target.close()
        for conn in target.held:
            conn.close()
