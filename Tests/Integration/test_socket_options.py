"""Socket options on the wire: SO_KEEPALIVE on every TCP socket unless -j (read back from the
kernel with `ss -o`, which shows a keepalive timer only on sockets that have it)."""
import shutil
import subprocess
import time

import pytest

from conftest import OUR_SPIPED, connect, free_port, tcp_address


def keepalive_by_port(port):
    """For established TCP sockets whose local or peer port is `port`: True if a keepalive
    timer is armed. Keys are (local, peer) address strings."""
    out = subprocess.run(["ss", "-tnoH", "state", "established"], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        fields = line.split()
        local, peer = fields[2], fields[3]
        if local.endswith(f":{port}") or peer.endswith(f":{port}"):
            found[(local, peer)] = "keepalive" in line
    return found


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2)")
@pytest.mark.parametrize("disable", [False, True])
def test_keepalive_unless_j(procs, key, echo, disable):
    target = echo()
    encrypted_port, plain_port = free_port(), free_port()
    extra = ["-j"] if disable else []
    procs.spiped(OUR_SPIPED, "-d", tcp_address(encrypted_port), target.address, key, *extra)
    procs.spiped(OUR_SPIPED, "-e", tcp_address(plain_port), tcp_address(encrypted_port), key, *extra)
    client = connect(tcp_address(plain_port))
    client.sendall(b"ping")
    assert client.recv(4) == b"ping"
    # The pipe's encrypted hop: our -e's outgoing socket and our -d's accepted socket. `ss`
    # shows one timer per socket, so a moment of retransmit/delayed-ACK timer is retried.
    deadline = time.monotonic() + 5
    while True:
        sockets = keepalive_by_port(encrypted_port)
        if disable or all(sockets.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    client.close()
    assert len(sockets) == 2, sockets
    assert all(flag == (not disable) for flag in sockets.values()), sockets
