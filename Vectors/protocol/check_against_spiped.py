#!/usr/bin/env python3
"""Checks gen_transcript.py's understanding of the protocol against the real spiped.

Runs Debian's spiped 1.6.x (`apt-get install spiped`) and talks to it with the same Python
functions that write transcript.txt:
  * as a client against `spiped -d` (which forwards to a local echo server), and
  * as a server behind `spiped -e` (a plain TCP client talks through it),
for each combination of -f on either side, plus -g refusing a -f peer. Exits non-zero on any
mismatch. Run:  python3 Vectors/protocol/check_against_spiped.py
"""
import os
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_transcript import P, G, aes_ctr, be, mac, pbkdf2, seal_packet  # noqa: E402
import hashlib  # noqa: E402
import hmac  # noqa: E402


def recv_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(data), count))
        data += chunk
    return data


def open_packet(cipher_key, mac_key, packet_number, packet):
    ct, tag = packet[:1028], packet[1028:]
    if not hmac.compare_digest(tag, mac(mac_key, ct + struct.pack(">Q", packet_number))):
        raise ValueError("packet MAC mismatch")
    padded = aes_ctr(cipher_key, struct.pack(">QQ", packet_number, 0), ct)
    length = struct.unpack(">I", padded[1024:])[0]
    if not 1 <= length <= 1024:
        raise ValueError("bad length %d" % length)
    return padded[:length]


def handshake(sock, role, k, fast):
    """Runs our side of the handshake on a connected socket; returns (send keys, receive keys)."""
    own_nonce = secrets.token_bytes(32)
    sock.sendall(own_nonce)
    peer_nonce = recv_exact(sock, 32)
    n_c, n_s = (own_nonce, peer_nonce) if role == "client" else (peer_nonce, own_nonce)
    dk1 = pbkdf2(k, n_c + n_s, 64)
    own_mac_key, peer_mac_key = (dk1[:32], dk1[32:]) if role == "client" else (dk1[32:], dk1[:32])
    x = (1 << 258) + int.from_bytes(secrets.token_bytes(32), "big")
    y = 1 if fast else pow(G, x, P)
    own_message = be(y, 256) + mac(own_mac_key, be(y, 256))
    if role == "client":
        sock.sendall(own_message)
    peer_message = recv_exact(sock, 288)
    peer_y_bytes, peer_tag = peer_message[:256], peer_message[256:]
    if not hmac.compare_digest(peer_tag, mac(peer_mac_key, peer_y_bytes)):
        raise ValueError("handshake MAC mismatch")
    peer_y = int.from_bytes(peer_y_bytes, "big")
    if not peer_y < P:
        raise ValueError("y >= p")
    if role == "server":
        sock.sendall(own_message)
    ysc = 1 if fast else pow(peer_y, x, P)
    dk2 = pbkdf2(k, n_c + n_s + be(ysc, 256), 128)
    client_keys, server_keys = (dk2[0:32], dk2[32:64]), (dk2[64:96], dk2[96:128])
    return (client_keys, server_keys) if role == "client" else (server_keys, client_keys)


def send_message(sock, keys, counter, message):
    for start in range(0, len(message), 1024):
        sock.sendall(seal_packet(keys[0], keys[1], counter[0], message[start:start + 1024]))
        counter[0] += 1


def receive_bytes(sock, keys, counter, count):
    data = b""
    while len(data) < count:
        data += open_packet(keys[0], keys[1], counter[0], recv_exact(sock, 1060))
        counter[0] += 1
    return data


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_spiped(mode, source_port, target_port, key_path, extra):
    pidfile = tempfile.mktemp(suffix=".pid")
    proc = subprocess.Popen(["spiped", mode, "-F", "-s", "[127.0.0.1]:%d" % source_port,
                             "-t", "[127.0.0.1]:%d" % target_port, "-k", key_path, "-p", pidfile] + extra,
                            stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", source_port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("spiped did not start")


def echo_server(listener):
    def serve(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                conn.sendall(data)
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


MESSAGE = secrets.token_bytes(5000) + b"x"


def check_client_against_spiped_d(key_path, k, our_fast, their_flags, expect_refusal=False):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    threading.Thread(target=echo_server, args=(listener,), daemon=True).start()
    port = free_port()
    proc = start_spiped("-d", port, listener.getsockname()[1], key_path, their_flags)
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.settimeout(5)
            try:
                send_keys, receive_keys = handshake(sock, "client", k, our_fast)
            except (EOFError, ConnectionError):
                if expect_refusal:
                    return "refused as expected"
                raise
            if expect_refusal:
                raise AssertionError("spiped -d accepted a handshake it should refuse")
            send_message(sock, send_keys, [0], MESSAGE)
            echoed = receive_bytes(sock, receive_keys, [0], len(MESSAGE))
            assert echoed == MESSAGE, "echo through spiped -d differs"
            return "ok"
    finally:
        proc.terminate()
        proc.wait()
        listener.close()


def check_server_behind_spiped_e(key_path, k, our_fast, their_flags, expect_refusal=False):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    results = []

    def handle(conn):
        with conn:
            conn.settimeout(5)
            try:
                send_keys, receive_keys = handshake(conn, "server", k, our_fast)
                data = receive_bytes(conn, receive_keys, [0], len(MESSAGE))
                send_message(conn, send_keys, [0], data[::-1])
                results.append("ok" if data == MESSAGE else "data differs")
            except Exception as error:  # reported by the main thread
                results.append(error)

    def serve():
        # start_spiped's probe connection also reaches us (spiped -e connects on accept); it
        # fails harmlessly. The data connection is handled the same way.
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = free_port()
    proc = start_spiped("-e", port, listener.getsockname()[1], key_path, their_flags)
    try:
        with socket.create_connection(("127.0.0.1", port)) as plain:
            plain.settimeout(5)
            plain.sendall(MESSAGE)
            reply = b""
            try:
                while len(reply) < len(MESSAGE):
                    chunk = plain.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
            except (socket.timeout, ConnectionError):
                pass  # spiped -e closing (or resetting) the plain side: checked below
        time.sleep(0.5)
        if expect_refusal:
            assert reply == b"" and "ok" not in results, "spiped -e accepted a handshake it should refuse"
            return "refused as expected (%s)" % [repr(r) for r in results]
        assert "ok" in results and reply == MESSAGE[::-1], "relay through spiped -e differs: %r" % results
        return "ok"
    finally:
        proc.terminate()
        proc.wait()
        listener.close()


def main():
    with tempfile.NamedTemporaryFile(delete=False) as f:
        key_file = secrets.token_bytes(32)
        f.write(key_file)
        key_path = f.name
    os.chmod(key_path, 0o600)
    k = hashlib.sha256(key_file).digest()
    failures = 0
    cases = [
        ("client vs spiped -d", check_client_against_spiped_d, False, [], False),
        ("fast client vs spiped -d", check_client_against_spiped_d, True, [], False),
        ("client vs spiped -d -f", check_client_against_spiped_d, False, ["-f"], False),
        ("fast client vs spiped -d -f", check_client_against_spiped_d, True, ["-f"], False),
        ("fast client vs spiped -d -g (must refuse)", check_client_against_spiped_d, True, ["-g"], True),
        ("server behind spiped -e", check_server_behind_spiped_e, False, [], False),
        ("fast server behind spiped -e", check_server_behind_spiped_e, True, [], False),
        ("server behind spiped -e -f", check_server_behind_spiped_e, False, ["-f"], False),
        ("fast server behind spiped -e -g (must refuse)", check_server_behind_spiped_e, True, ["-g"], True),
    ]
    for name, check, our_fast, flags, refusal in cases:
        try:
            print("%-50s %s" % (name, check(key_path, k, our_fast, flags, refusal)))
        except Exception as error:
            failures += 1
            print("%-50s FAILED: %r" % (name, error))
    os.unlink(key_path)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
