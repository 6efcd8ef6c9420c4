#!/usr/bin/env python3
"""Independent spiped session transcripts, written from the protocol description
(/work/shared/PROTOCOL.md: spiped's DESIGN.md facts), not from the Swift implementation.

Uses only Python's hashlib / hmac / pow and the `cryptography` package's AES-256-CTR.
Inputs are fixed (key file, nonces, private exponents in the reference's 2^258 + r form), so
the output is deterministic. Writes transcript.txt next to this script:

    [SESSION name]          one section per session
    KEYFILE = ...           a record describing the session inputs, the handshake bytes each
    ...                     side sends and the intermediate values (dk1, ySC, dk2)

    DIRECTION = c2s         one record per message: the plaintext handed to the sealer in one
    MESSAGE = ...           call and the packets it turns into (1060 bytes each,
    PACKETS = ...           packet numbers continuing across messages of one direction)

All values are lower-case hex. Run:  python3 Vectors/protocol/gen_transcript.py
"""
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

HERE = os.path.dirname(os.path.abspath(__file__))


def group14_prime():
    """The RFC 3526 2048-bit MODP prime, read from the published vector file (COUNT = 1)."""
    path = os.path.join(HERE, "..", "DH", "rfc3526.txt")
    count = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("COUNT"):
                count = int(line.split("=")[1])
            elif line.startswith("P =") and count == 1:
                return int(line.split("=")[1].strip(), 16)
    raise SystemExit("group 14 prime not found in " + path)


P = group14_prime()
G = 2
assert P.bit_length() == 2048


def be(value, length):
    return value.to_bytes(length, "big")


def pbkdf2(password, salt, length):
    return hashlib.pbkdf2_hmac("sha256", password, salt, 1, length)


def mac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def aes_ctr(key, initial_counter_block, data):
    """AES-256-CTR with a full 128-bit big-endian counter (SP 800-38A)."""
    enc = Cipher(algorithms.AES(key), modes.CTR(initial_counter_block)).encryptor()
    return enc.update(data) + enc.finalize()


def seal_packet(cipher_key, mac_key, packet_number, message):
    """One 1060-byte packet: AES-CTR(E, M || zero padding to 1024 || be32(len)) || HMAC(H, ct || be64(n))."""
    assert 1 <= len(message) <= 1024
    padded = message + bytes(1024 - len(message)) + struct.pack(">I", len(message))
    # Counter block for block i of packet n is be64(n) || be64(i), i starting at 0.
    ct = aes_ctr(cipher_key, struct.pack(">QQ", packet_number, 0), padded)
    tag = mac(mac_key, ct + struct.pack(">Q", packet_number))
    packet = ct + tag
    assert len(packet) == 1060
    return packet


def derive_session(key_file, n_c, n_s, x_c, x_s, fast_c, fast_s):
    """Runs both sides of the handshake; returns the record fields and the four packet keys."""
    k = hashlib.sha256(key_file).digest()
    dk1 = pbkdf2(k, n_c + n_s, 64)
    dhmac_c, dhmac_s = dk1[:32], dk1[32:]

    y_c = 1 if fast_c else pow(G, x_c, P)
    y_s = 1 if fast_s else pow(G, x_s, P)
    y_c_bytes, y_s_bytes = be(y_c, 256), be(y_s, 256)
    client_dh = y_c_bytes + mac(dhmac_c, y_c_bytes)
    server_dh = y_s_bytes + mac(dhmac_s, y_s_bytes)

    # Each side: ySC = y_peer ^ x_own, or 1 when it runs fast (-f).
    ysc_client = 1 if fast_c else pow(y_s, x_c, P)
    ysc_server = 1 if fast_s else pow(y_c, x_s, P)
    assert ysc_client == ysc_server, "both sides must agree on ySC"
    ysc = be(ysc_client, 256)

    dk2 = pbkdf2(k, n_c + n_s + ysc, 128)
    keys = {"E_C": dk2[0:32], "H_C": dk2[32:64], "E_S": dk2[64:96], "H_S": dk2[96:128]}
    fields = [
        ("KEYFILE", key_file.hex()),
        ("K", k.hex()),
        ("NONCE_CLIENT", n_c.hex()),
        ("NONCE_SERVER", n_s.hex()),
        ("EXPONENT_CLIENT", be(x_c, 33).hex()),
        ("EXPONENT_SERVER", be(x_s, 33).hex()),
        ("FAST_CLIENT", "1" if fast_c else "0"),
        ("FAST_SERVER", "1" if fast_s else "0"),
        ("DK1", dk1.hex()),
        ("YSC", ysc.hex()),
        ("DK2", dk2.hex()),
        # Everything each side writes during the handshake, in order: nonce, then y || HMAC.
        ("CLIENT_HANDSHAKE", (n_c + client_dh).hex()),
        ("SERVER_HANDSHAKE", (n_s + server_dh).hex()),
    ]
    return fields, keys


def deterministic_bytes(label, length):
    """Fixed pseudo-random test input: SHA-256 in counter mode over a label."""
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(label.encode() + struct.pack(">I", counter)).digest()
        counter += 1
    return out[:length]


# Messages per direction, each handed to the sealer in one call. A message longer than 1024
# bytes becomes several packets (1024 bytes each, the rest in the last).
MESSAGES = {
    "c2s": [1, 1024, 1025, 100, 2100, 17],
    "s2c": [1, 1025, 1024, 5, 3072],
}


def session(name, fast_c, fast_s):
    key_file = deterministic_bytes("key file", 32) + b"\n"  # 33 bytes: not a 32-byte multiple
    n_c = deterministic_bytes(name + " client nonce", 32)
    n_s = deterministic_bytes(name + " server nonce", 32)
    # The reference's private exponent form: x = 2^258 + r with r a 256-bit random number.
    x_c = (1 << 258) + int.from_bytes(deterministic_bytes(name + " client exponent", 32), "big")
    x_s = (1 << 258) + int.from_bytes(deterministic_bytes(name + " server exponent", 32), "big")

    fields, keys = derive_session(key_file, n_c, n_s, x_c, x_s, fast_c, fast_s)
    lines = ["[SESSION %s]" % name]
    lines += ["%s = %s" % kv for kv in fields]
    lines.append("")

    direction_keys = {"c2s": (keys["E_C"], keys["H_C"]), "s2c": (keys["E_S"], keys["H_S"])}
    for direction, sizes in MESSAGES.items():
        cipher_key, mac_key = direction_keys[direction]
        packet_number = 0
        for index, size in enumerate(sizes):
            message = deterministic_bytes("%s %s message %d" % (name, direction, index), size)
            packets = b""
            for start in range(0, len(message), 1024):
                packets += seal_packet(cipher_key, mac_key, packet_number, message[start:start + 1024])
                packet_number += 1
            lines += ["DIRECTION = %s" % direction, "MESSAGE = %s" % message.hex(),
                      "PACKETS = %s" % packets.hex(), ""]
    return lines


def main():
    out = [
        "# spiped 1.x session transcripts computed by Vectors/protocol/gen_transcript.py",
        "# (Python hashlib/hmac/pow + cryptography AES-256-CTR, written from the protocol",
        "# description). Do not edit: regenerate with  python3 Vectors/protocol/gen_transcript.py",
        "",
    ]
    out += session("normal", False, False)
    out += session("fast-client", True, False)
    out += session("fast-server", False, True)
    out += session("fast-both", True, True)
    with open(os.path.join(HERE, "transcript.txt"), "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
