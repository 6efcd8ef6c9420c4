"""An active attacker between spiped -e and spiped -d: a relay that flips a bit in a packet,
replays a packet, swaps two packets, or cuts the stream in the middle of a packet.

The client sends 1024-byte messages one at a time, each only after the target has received
the previous one, so message i travels as packet i. The damaged packet is number 3: the
target must receive exactly messages 0, 1 and 2 — nothing forged, nothing reordered, nothing
after the damage — and the connection pair must close. Afterwards the same relay, passing
bytes untouched, carries a good client's echo round trip."""
import os
import time

import pytest

from robust_harness import (PAYLOAD_BYTES, TamperingRelay, connect, echo_round_trip,
                            free_port, read_until_closed, wait_until)

DAMAGED_PACKET = 3
MESSAGES = 8


@pytest.mark.parametrize("kind", ["flip", "replay", "swap", "cut"])
def test_tampered_packet_stream_delivers_only_verified_prefix(daemons, targets, key, kind):
    target = targets("echo")
    decrypt = daemons("-d", free_port(), target.port, key, "-o", "2")
    relay = TamperingRelay(decrypt.source_port, (kind, DAMAGED_PACKET))
    encrypt = daemons("-e", free_port(), relay.port, key, "-o", "2")
    messages = [os.urandom(PAYLOAD_BYTES) for _ in range(MESSAGES)]
    with connect(encrypt.source_port) as client:
        stalled = False
        for index, message in enumerate(messages):
            try:
                client.sendall(message)
            except OSError:
                break               # the pair already closed
            if stalled:
                time.sleep(0.05)    # keep later messages in packets of their own
                continue
            expected = (index + 1) * PAYLOAD_BYTES
            try:
                wait_until(lambda: target.total_received() >= expected, timeout=1.0,
                           what=f"message {index}")
            except AssertionError:
                # Damage reached; send the rest anyway (a swap needs the next packet).
                stalled = True
        # The pair must close towards the client too (EOF or reset), not hang.
        _, how = read_until_closed(client, timeout=10)
        assert how in ("eof", "reset"), "client connection stayed open after tampering"
    wait_until(lambda: target.connections == 0 or target.ended[0].is_set(), timeout=10,
               what="target connection to end")
    assert relay.damage_done.is_set(), "the relay never reached the packet to damage"
    delivered = bytes(target.received[0]) if target.connections else b""
    expected = b"".join(messages[:DAMAGED_PACKET])
    assert len(delivered) == len(expected), \
        f"target got {len(delivered)} bytes, expected the {DAMAGED_PACKET} verified packets ({len(expected)})"
    assert delivered == expected, "target got bytes that differ from what was sent (forgery/reorder)"
    decrypt.assert_running()
    encrypt.assert_running()
    # The same relay, now passing bytes untouched, carries a good client.
    echo_round_trip(encrypt.source_port, size=50_000)
    assert relay.connections == 2
