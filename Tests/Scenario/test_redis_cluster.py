"""Redis Cluster through one pair of `spiped --config` processes (issue 12).

Three Redis masters in cluster mode run in "data centre B" on 127.0.0.1. Clients reach them only
through one server-side `spiped --config` process (decrypt pipes in front of the nodes) and one
client-side `spiped --config` process (one encrypt listener per node, in "data centre A"). The
nodes' announce settings make the cluster advertise the client-side listeners, so every
redirect (MOVED, ASK) and every CLUSTER SLOTS / SHARDS / NODES answer sends clients back into
the pipes. Two arrangements, both described in README.md ("Redis Cluster across two data
centres"):

- `announce-port`: `cluster-announce-ip` + `cluster-announce-port` (= the node's client-side
  listener) + `cluster-announce-bus-port` (= a client-side listener too: the cluster bus also
  runs through its own pair of pipes). One decrypt pipe per node port and per bus port, one key.
- `announce-hostname` (Redis 7.0+): `cluster-announce-hostname` +
  `cluster-preferred-endpoint-type hostname`; the client-side listeners use the nodes' own port
  numbers on another address (127.0.0.2 stands for data centre A), the bus stays direct (it
  stands for DC B's private network). The server side is ONE decrypt pipe that routes by key:
  each client-side listener holds its node's key.

The nodes listen on 127.0.0.1 (the test cannot hide them), so the test checks that no client is
ever sent to them: redis-cli's redirect lines, redis-py's node table, the CLUSTER answers read
through every pipe and the MOVED/ASK replies of a slot migration must all name client-side
listeners; and every connection redis-py holds on a node must come from the server-side spiped
(which connects from its own `bind-address`, 127.0.0.3), never from a client directly.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import OUR_SPIPED, require_program
from scenario_support import (
    ManagedProcess, ProcessGroup, RespClient, RespError, find_program, private_dir, redis_cli,
    write_key)
from spiped_testkit import free_port, listening_tcp_ports

KEY_COUNT = 1000
# The client side's address in the `announce-hostname` arrangement (any 127/8 address is local).
CLIENT_SIDE_HOST = "127.0.0.2"
# The address the server-side spiped connects to the nodes from, so that a node can tell a
# connection that came through the pipe (127.0.0.3) from one that did not (127.0.0.1).
PIPE_SOURCE_HOST = "127.0.0.3"
NODE_HOST = "127.0.0.1"
# Every wait in this file ends after at most this many seconds.
WAIT_SECONDS = 30.0
# How long the announced addresses may take to reach every node once the cluster is up.
ANNOUNCE_SPREAD_SECONDS = 10.0

ARRANGEMENTS = ["announce-port", "announce-hostname"]

try:
    from redis.cluster import RedisCluster
    from redis.crc import key_slot
except ImportError:  # pragma: no cover - reported as a failure by the fixture
    RedisCluster = None
    key_slot = None


def can_bind(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, also_free_on: tuple[str, ...] = ()) -> list[int]:
    """`count` distinct ports from free_port (free on 127.0.0.1) that are also free on each
    address of `also_free_on`."""
    ports: list[int] = []
    for _ in range(count * 20):
        if len(ports) == count:
            break
        port = free_port()
        if port not in ports and all(can_bind(host, port) for host in also_free_on):
            ports.append(port)
    assert len(ports) == count, f"could not find {count} free ports"
    return ports


@dataclass
class Node:
    """One cluster node: where it really listens (DC B) and where clients must be sent (DC A)."""
    index: int
    port: int                 # the node's own client port, on 127.0.0.1
    bus_port: int             # the node's own cluster-bus port (`cluster-port`)
    client_host: str          # the client-side listener for this node
    client_port: int
    announced_bus_port: int   # the bus port the node announces
    directory: Path
    node_id: str = ""
    admin: RespClient | None = None

    @property
    def client_endpoint(self) -> tuple[str, int]:
        return (self.client_host, self.client_port)


@dataclass
class Cluster:
    """The running cluster and both spiped processes of one arrangement."""
    arrangement: str
    nodes: list[Node]
    server_side: ManagedProcess
    client_side: ManagedProcess
    timings: dict[str, object] = field(default_factory=dict)

    @property
    def client_endpoints(self) -> set[tuple[str, int]]:
        return {node.client_endpoint for node in self.nodes}

    def slot_owners(self) -> list[Node]:
        """The node that owns each of the 16384 slots, as node 1 (read directly) sees it."""
        owners: list[Node | None] = [None] * 16384
        by_id = {node.node_id: node for node in self.nodes}
        for start, end, master, *_ in self.nodes[0].admin.command("CLUSTER", "SLOTS"):
            owners[start:end + 1] = [by_id[master[2].decode()]] * (end - start + 1)
        assert None not in owners, "some slots have no owner"
        return owners

    def node_key_counts(self, prefix: str) -> list[int]:
        """How many keys starting with `prefix` each node holds (read directly on the node)."""
        return [len(node.admin.command("KEYS", f"{prefix}*")) for node in self.nodes]

    def assert_running(self) -> None:
        self.server_side.assert_running()
        self.client_side.assert_running()


def node_conf(arrangement: str, node: Node) -> str:
    """The node's redis.conf: cluster mode plus the announce settings of `arrangement`."""
    lines = [
        f"port {node.port}",
        f"bind {NODE_HOST}",
        "protected-mode no",
        'save ""',
        "appendonly no",
        f"dir {node.directory}",
        "cluster-enabled yes",
        "cluster-config-file nodes.conf",
        f"cluster-port {node.bus_port}",
        f"cluster-announce-ip {NODE_HOST}",
    ]
    if arrangement == "announce-port":
        lines += [f"cluster-announce-port {node.client_port}",
                  f"cluster-announce-bus-port {node.announced_bus_port}"]
    else:
        lines += [f"cluster-announce-hostname {node.client_host}",
                  "cluster-preferred-endpoint-type hostname"]
    return "\n".join(lines) + "\n"


def pipe_section(name: str, mode: str, source: str, target: str | None = None,
                 key: Path | None = None, routes: list[tuple[Path, str]] = (),
                 bind_address: str | None = None) -> str:
    lines = [f"[{name}]", f"mode = {mode}", f"source = {source}"]
    if target is not None:
        lines.append(f"target = {target}")
    if key is not None:
        lines.append(f"key = {key}")
    lines += [f"route = {route_key} {address}" for route_key, address in routes]
    if bind_address is not None:
        lines.append(f"bind-address = {bind_address}")
    return "\n".join(lines) + "\n\n"


def start_spiped_config(group: ProcessGroup, name: str, config: Path,
                        sources: list[int]) -> ManagedProcess:
    """`spiped --config FILE --check` must pass; then `spiped --config FILE -F` runs until it
    listens on every port of `sources`."""
    check = subprocess.run([str(OUR_SPIPED), "--config", str(config), "--check"],
                           capture_output=True, timeout=WAIT_SECONDS)
    assert check.returncode == 0, (f"--check refused {config}:\n"
                                   f"{(check.stdout + check.stderr).decode(errors='replace')}")
    process = group.start(name, [OUR_SPIPED, "--config", config, "-F"])
    process.wait_until(lambda: set(sources) <= listening_tcp_ports(),
                       f"listening on {sources}", timeout=WAIT_SECONDS)
    return process


def wait_for_cluster(cluster: Cluster) -> None:
    """Waits until every node says cluster_state:ok and knows three nodes, then (at most
    ANNOUNCE_SPREAD_SECONDS more) until every node advertises the client-side listeners: the
    announce settings spread by gossip. If they never do, the tests say where clients are
    sent instead."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not all("cluster_state:ok" in info and "cluster_known_nodes:3" in info
                  for info in (n.admin.command("CLUSTER", "INFO").decode()
                               for n in cluster.nodes)):
        cluster.assert_running()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"cluster not ready after {WAIT_SECONDS} s: "
                f"{[n.admin.command('CLUSTER', 'NODES').decode() for n in cluster.nodes]}")
        time.sleep(0.1)
    deadline = time.monotonic() + ANNOUNCE_SPREAD_SECONDS
    while time.monotonic() < deadline:
        if all({endpoint for endpoint, _ in slots_endpoints(n.admin)} == cluster.client_endpoints
               for n in cluster.nodes):
            return
        time.sleep(0.1)


def slots_endpoints(client: RespClient) -> list[tuple[tuple[str, int], tuple[int, int]]]:
    """((host, port), (first slot, last slot)) of every master and replica in CLUSTER SLOTS."""
    result = []
    for start, end, *servers in client.command("CLUSTER", "SLOTS"):
        for server in servers:
            result.append(((server[0].decode(), int(server[1])), (start, end)))
    return result


class EndpointClient(RespClient):
    """A RespClient to any (host, port); RespClient itself connects to 127.0.0.1 only."""

    def __init__(self, endpoint: tuple[str, int], timeout: float = WAIT_SECONDS):
        self.sock = socket.create_connection(endpoint, timeout=timeout)
        self.reader = self.sock.makefile("rb")


def pairs(flat: list) -> dict[str, object]:
    """A RESP2 flattened map (key, value, key, value, ...) as a dict with str keys."""
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


@pytest.fixture(scope="module", params=ARRANGEMENTS)
def cluster(request):
    """Three masters, the server-side and client-side `spiped --config` processes, and the
    cluster created with `redis-cli --cluster create`; everything stopped at teardown."""
    require_program("redis-server")
    require_program("redis-cli")
    if RedisCluster is None:
        pytest.fail("the Python redis package is missing (pip install redis)", pytrace=False)
    arrangement = request.param
    base = private_dir(f"scn-cluster-{arrangement}-")
    group = ProcessGroup(base)
    nodes: list[Node] = []
    started = time.monotonic()
    try:
        if arrangement == "announce-port":
            ports = free_ports(18)
            node_ports, bus_ports, client_ports, decrypt_ports, bus_client_ports, \
                bus_decrypt_ports = (ports[i::6] for i in range(6))
            client_hosts = [NODE_HOST] * 3
        else:
            # The client-side listeners take the nodes' own port numbers on CLIENT_SIDE_HOST.
            ports = free_ports(7, also_free_on=(CLIENT_SIDE_HOST,))
            node_ports, bus_ports, decrypt_ports = ports[0:3], ports[3:6], ports[6:7]
            client_ports, client_hosts = node_ports, [CLIENT_SIDE_HOST] * 3
            bus_client_ports = bus_ports
        for i in range(3):
            directory = base / f"node-{i + 1}"
            directory.mkdir()
            nodes.append(Node(i + 1, node_ports[i], bus_ports[i], client_hosts[i],
                              client_ports[i], bus_client_ports[i], directory))

        # The two spiped configuration files (the README shows their two-site form).
        server_config, client_config = base / "server-side.conf", base / "client-side.conf"
        server_text = "# data centre B: in front of the nodes\n\n"
        client_text = "# data centre A: one listener per node\n\n"
        server_sources: list[int] = []
        client_sources: list[int] = []
        if arrangement == "announce-port":
            key = write_key(base / "cluster.key")
            for node, decrypt_port, bus_decrypt_port in zip(nodes, decrypt_ports,
                                                            bus_decrypt_ports):
                server_text += pipe_section(
                    f"node-{node.index}", "decrypt", f"[{NODE_HOST}]:{decrypt_port}",
                    f"[{NODE_HOST}]:{node.port}", key, bind_address=f"[{PIPE_SOURCE_HOST}]")
                server_text += pipe_section(
                    f"node-{node.index}-bus", "decrypt", f"[{NODE_HOST}]:{bus_decrypt_port}",
                    f"[{NODE_HOST}]:{node.bus_port}", key,
                    bind_address=f"[{PIPE_SOURCE_HOST}]")
                client_text += pipe_section(
                    f"node-{node.index}", "encrypt", f"[{node.client_host}]:{node.client_port}",
                    f"[{NODE_HOST}]:{decrypt_port}", key)
                client_text += pipe_section(
                    f"node-{node.index}-bus", "encrypt",
                    f"[{NODE_HOST}]:{node.announced_bus_port}",
                    f"[{NODE_HOST}]:{bus_decrypt_port}", key)
                server_sources += [decrypt_port, bus_decrypt_port]
                client_sources += [node.client_port, node.announced_bus_port]
        else:
            keys = [write_key(base / f"node-{node.index}.key") for node in nodes]
            server_text += pipe_section(
                "cluster", "decrypt", f"[{NODE_HOST}]:{decrypt_ports[0]}",
                routes=[(key, f"[{NODE_HOST}]:{node.port}") for key, node in zip(keys, nodes)],
                bind_address=f"[{PIPE_SOURCE_HOST}]")
            for node, key in zip(nodes, keys):
                client_text += pipe_section(
                    f"node-{node.index}", "encrypt", f"[{node.client_host}]:{node.client_port}",
                    f"[{NODE_HOST}]:{decrypt_ports[0]}", key)
            server_sources, client_sources = decrypt_ports, node_ports
        server_config.write_text(server_text)
        client_config.write_text(client_text)
        server_side = start_spiped_config(group, "spiped-server-side", server_config,
                                          server_sources)
        client_side = start_spiped_config(group, "spiped-client-side", client_config,
                                          client_sources)

        for node in nodes:
            conf = node.directory / "redis.conf"
            conf.write_text(node_conf(arrangement, node))
            process = group.start(f"redis-node-{node.index}", [find_program("redis-server"),
                                                               conf])
            process.wait_until(
                lambda n=node: {n.port, n.bus_port} <= listening_tcp_ports(),
                f"listening on {node.port} and {node.bus_port}", timeout=WAIT_SECONDS)
            # The one direct connection per node: the administrator's (DC B's loopback).
            node.admin = RespClient(node.port, timeout=WAIT_SECONDS)
            assert node.admin.command("CLIENT", "SETNAME", "admin") == "OK"
            node.node_id = node.admin.command("CLUSTER", "MYID").decode()

        created = redis_cli("--cluster", "create",
                            *[f"{NODE_HOST}:{node.port}" for node in nodes], "--cluster-yes",
                            timeout=WAIT_SECONDS * 2)
        output = (created.stdout + created.stderr).decode(errors="replace")
        assert created.returncode == 0 and "All 16384 slots covered" in output, output
        cluster = Cluster(arrangement, nodes, server_side, client_side)
        wait_for_cluster(cluster)
        cluster.timings["start"] = round(time.monotonic() - started, 2)
        yield cluster
        cluster.assert_running()
        print(f"\n{arrangement}: {cluster.timings}")
    finally:
        for node in nodes:
            if node.admin is not None:
                node.admin.close()
        group.stop_all()
        if not os.environ.get("KEEP_SCENARIO_DIR"):
            shutil.rmtree(base, ignore_errors=True)


def test_cluster_answers_name_only_client_side_listeners(cluster: Cluster):
    """CLUSTER SLOTS, SHARDS and NODES, asked through each node's pipe, give every node's
    client-side listener as its client endpoint, never the node's own address."""
    for node in cluster.nodes:
        with EndpointClient(node.client_endpoint) as client:
            # The pipe really leads to this node.
            assert client.command("CLUSTER", "MYID").decode() == node.node_id

            slots = slots_endpoints(client)
            assert {endpoint for endpoint, _ in slots} == cluster.client_endpoints, slots
            assert sum(end - start + 1 for _, (start, end) in slots) == 16384

            shard_endpoints = set()
            for shard in client.command("CLUSTER", "SHARDS"):
                for entry in pairs(shard)["nodes"]:
                    fields = pairs(entry)
                    shard_endpoints.add((fields["endpoint"].decode(), int(fields["port"])))
            assert shard_endpoints == cluster.client_endpoints

            node_endpoints, bus_ports = set(), set()
            for line in client.command("CLUSTER", "NODES").decode().splitlines():
                address = line.split()[1]             # ip:port@cport[,hostname]
                ip_port, _, rest = address.partition("@")
                bus_port, _, hostname = rest.partition(",")
                ip, port = ip_port.rsplit(":", 1)
                host = hostname if cluster.arrangement == "announce-hostname" else ip
                node_endpoints.add((host, int(port)))
                bus_ports.add(int(bus_port))
            assert node_endpoints == cluster.client_endpoints
            # The bus: through its own pipes (announce-port) or direct (announce-hostname).
            assert bus_ports == {n.announced_bus_port for n in cluster.nodes}
    if cluster.arrangement == "announce-port":
        # Each node's bus port is reached by its two peers, only through the bus pipes.
        for node in cluster.nodes:
            peers = established_peers(node.bus_port)
            assert len(peers) >= 2 and set(peers) == {PIPE_SOURCE_HOST}, (node.index, peers)
    cluster.assert_running()


def established_peers(local_port: int) -> list[str]:
    """The remote IPv4 address of each established TCP connection to `local_port`, read from
    /proc/net/tcp (hexadecimal, little-endian address)."""
    peers = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and int(local.split(":")[1], 16) == local_port:
            address = bytes.fromhex(remote.split(":")[0])[::-1]
            peers.append(socket.inet_ntoa(address))
    return peers



REDIRECT_LINE = re.compile(r"^-> Redirected to slot \[(\d+)\] located at (.+):(\d+)$")


def run_redis_cli_cluster(cluster: Cluster, commands: list[str]) -> tuple[list[str], list]:
    """`redis-cli -c` connected to node 1's client-side listener, fed `commands` one per line
    on standard input (it runs them one by one and follows every redirect). Returns the reply
    lines and the redirects [(slot, (host, port))] it printed."""
    first = cluster.nodes[0]
    result = redis_cli("-c", "-h", first.client_host, "-p", str(first.client_port),
                       input_bytes="".join(f"{c}\n" for c in commands).encode(),
                       timeout=WAIT_SECONDS * 2)
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0 and not stderr.strip(), (result.returncode, stderr)
    replies, redirects = [], []
    for line in result.stdout.decode(errors="replace").splitlines():
        match = REDIRECT_LINE.match(line)
        if match:
            redirects.append((int(match[1]), (match[2], int(match[3]))))
        else:
            replies.append(line)
    return replies, redirects


def test_redis_cli_follows_moved_through_the_pipes(cluster: Cluster):
    """`redis-cli -c` writes and reads 1000 keys through node 1's listener; every MOVED it
    follows sends it to a client-side listener, and every master gets keys."""
    keys = [f"cli:{i}" for i in range(KEY_COUNT)]
    started = time.monotonic()
    replies, set_redirects = run_redis_cli_cluster(cluster, [f"SET {k} v-{k}" for k in keys])
    assert replies == ["OK"] * KEY_COUNT, [r for r in replies if r != "OK"][:5]
    replies, get_redirects = run_redis_cli_cluster(cluster, [f"GET {k}" for k in keys])
    assert replies == [f"v-{k}" for k in keys]
    cluster.timings["redis-cli 2x1000"] = round(time.monotonic() - started, 2)

    redirects = set_redirects + get_redirects
    cluster.timings["redis-cli redirects"] = len(redirects)
    # Keys spread over the slots bounce between the nodes: hundreds of redirects.
    assert len(redirects) > KEY_COUNT // 2, len(redirects)
    targets = {endpoint for _, endpoint in redirects}
    assert targets == cluster.client_endpoints, (
        f"redirected to {targets - cluster.client_endpoints}")
    owners = cluster.slot_owners()
    for slot, endpoint in redirects:
        assert owners[slot].client_endpoint == endpoint, (slot, endpoint)
    counts = cluster.node_key_counts("cli:")
    cluster.timings["redis-cli keys per node"] = counts
    assert sum(counts) == KEY_COUNT and min(counts) > KEY_COUNT // 5, counts
    cluster.assert_running()


def clients_not_through_the_pipe(node: Node) -> list[str]:
    """CLIENT LIST entries on `node` that are neither the administrator's connection nor a
    connection from the server-side spiped (which connects from PIPE_SOURCE_HOST)."""
    entries = node.admin.command("CLIENT", "LIST").decode().splitlines()
    return [entry for entry in entries
            if " name=admin " not in entry and f" addr={PIPE_SOURCE_HOST}:" not in entry]


def clients_through_the_pipe(node: Node) -> int:
    entries = node.admin.command("CLIENT", "LIST").decode().splitlines()
    return sum(f" addr={PIPE_SOURCE_HOST}:" in entry for entry in entries)


def test_redis_py_cluster_through_the_pipes(cluster: Cluster):
    """redis-py's RedisCluster, given only node 1's client-side listener, learns the other
    listeners (never a node's own address), writes and reads 1000 keys on every master, and
    every connection it holds on a node comes through the server-side spiped."""
    first = cluster.nodes[0]
    started = time.monotonic()
    client = RedisCluster(host=first.client_host, port=first.client_port,
                          socket_timeout=WAIT_SECONDS, socket_connect_timeout=WAIT_SECONDS)
    try:
        known = {(n.host, n.port) for n in client.get_nodes()}
        assert known == cluster.client_endpoints, known
        for i in range(KEY_COUNT):
            assert client.set(f"py:{i}", f"p-{i}") is True
        for i in range(KEY_COUNT):
            assert client.get(f"py:{i}") == f"p-{i}".encode()
        cluster.timings["redis-py 2x1000"] = round(time.monotonic() - started, 2)
        known = {(n.host, n.port) for n in client.get_nodes()}
        assert known == cluster.client_endpoints, known
        for node in cluster.nodes:
            assert clients_not_through_the_pipe(node) == []
            assert clients_through_the_pipe(node) >= 1, node
    finally:
        client.close()
    counts = cluster.node_key_counts("py:")
    cluster.timings["redis-py keys per node"] = counts
    assert sum(counts) == KEY_COUNT and min(counts) > KEY_COUNT // 5, counts
    cluster.assert_running()


def key_in_slot_owned_by(cluster: Cluster, node: Node, prefix: str,
                         empty: bool = False) -> tuple[str, int]:
    """A key (and its slot) that `node` owns; with `empty`, in a slot that holds no key."""
    owners = cluster.slot_owners()
    for n in range(100_000):
        key = f"{prefix}:{n}"
        slot = key_slot(key.encode())
        if owners[slot] is not node:
            continue
        if empty and node.admin.command("CLUSTER", "COUNTKEYSINSLOT", slot) != 0:
            continue
        return key, slot
    raise AssertionError(f"no key found for node {node.index}")


def redirect_of(client: RespClient, *command) -> tuple[str, int, tuple[str, int]]:
    """Sends `command`, which must be answered by a redirect; returns (kind, slot, endpoint)."""
    with pytest.raises(RespError) as error:
        client.command(*command)
    kind, slot, address = str(error.value).split()
    host, port = address.rsplit(":", 1)
    return kind, int(slot), (host, int(port))


def test_moved_and_ask_during_a_slot_migration_name_client_side_listeners(cluster: Cluster):
    """MOVED for a key of another node, ASK while a slot moves from node 1 to node 2, MOVED
    once it has moved: each names the client-side listener of the node that holds the slot;
    redis-py, whose slot table is now stale, follows the MOVED to node 2's listener."""
    one, two, three = cluster.nodes
    client_py = RedisCluster(host=one.client_host, port=one.client_port,
                             socket_timeout=WAIT_SECONDS, socket_connect_timeout=WAIT_SECONDS)
    try:
        with EndpointClient(one.client_endpoint) as via_one:
            for other in (two, three):
                key, slot = key_in_slot_owned_by(cluster, other, "moved")
                assert redirect_of(via_one, "GET", key) == ("MOVED", slot,
                                                            other.client_endpoint)

            key, slot = key_in_slot_owned_by(cluster, one, "migrating", empty=True)
            assert client_py.set(key, "before") is True  # node 1 still owns the slot
            assert client_py.delete(key) == 1
            # The administrator moves the empty slot, directly on the nodes (DC B).
            assert two.admin.command("CLUSTER", "SETSLOT", slot, "IMPORTING",
                                     one.node_id) == "OK"
            assert one.admin.command("CLUSTER", "SETSLOT", slot, "MIGRATING",
                                     two.node_id) == "OK"
            assert redirect_of(via_one, "GET", key) == ("ASK", slot, two.client_endpoint)
            with EndpointClient(two.client_endpoint) as via_two:
                assert via_two.command("ASKING") == "OK"
                assert via_two.command("SET", key, "moved-by-ask") == "OK"
            for node in (two, one, three):
                assert node.admin.command("CLUSTER", "SETSLOT", slot, "NODE",
                                          two.node_id) == "OK"
            assert redirect_of(via_one, "GET", key) == ("MOVED", slot, two.client_endpoint)

        assert client_py.get(key) == b"moved-by-ask"
        owner = client_py.get_node_from_key(key)
        assert (owner.host, owner.port) == two.client_endpoint
        known = {(n.host, n.port) for n in client_py.get_nodes()}
        assert known == cluster.client_endpoints, known
        assert two.admin.command("GET", key) == b"moved-by-ask"
    finally:
        client_py.close()
    cluster.assert_running()
