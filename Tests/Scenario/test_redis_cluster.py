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
import signal
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


def free_ports(count: int, also_free_on: tuple[str, ...] = (),
               exclude: set[int] = frozenset()) -> list[int]:
    """`count` distinct ports from free_port (free on 127.0.0.1), none in `exclude`, that are
    also free on each address of `also_free_on`."""
    ports: list[int] = []
    for _ in range(count * 20):
        if len(ports) == count:
            break
        port = free_port()
        if (port not in ports and port not in exclude
                and all(can_bind(host, port) for host in also_free_on)):
            ports.append(port)
    assert len(ports) == count, f"could not find {count} free ports"
    return ports


@dataclass
class Node:
    """One cluster node: where it really listens (DC B), where clients must be sent (DC A), and
    the server-side listener that leads to it."""
    index: int
    port: int                 # the node's own client port, on 127.0.0.1
    bus_port: int             # the node's own cluster-bus port (`cluster-port`)
    client_host: str          # the client-side listener for this node
    client_port: int
    announced_bus_port: int   # the bus port the node announces
    decrypt_port: int         # the server-side listener (shared by every node when routing)
    bus_decrypt_port: int     # the server-side listener of the bus (0: the bus is direct)
    key: Path                 # the key of this node's pipe
    directory: Path
    node_id: str = ""
    admin: RespClient | None = None

    @property
    def client_endpoint(self) -> tuple[str, int]:
        return (self.client_host, self.client_port)

    def admin_address(self, arrangement: str) -> str:
        """Where `redis-cli --cluster` reaches the node: in `announce-port` every machine sees
        each node at its pipe, administrators too; in `announce-hostname` they use the node's
        own address inside DC B, as CLUSTER NODES gives it."""
        if arrangement == "announce-port":
            return f"{self.client_host}:{self.client_port}"
        return f"{NODE_HOST}:{self.port}"

    def ports(self) -> set[int]:
        return {self.port, self.bus_port, self.client_port, self.announced_bus_port,
                self.decrypt_port, self.bus_decrypt_port}


@dataclass
class Cluster:
    """The cluster of one arrangement, both spiped processes and the files they read."""
    arrangement: str
    base: Path
    group: ProcessGroup
    gateway_port: int = 0     # announce-hostname: the one server-side listener, routing by key
    nodes: list[Node] = field(default_factory=list)
    server_side: ManagedProcess | None = None
    client_side: ManagedProcess | None = None
    timings: dict[str, object] = field(default_factory=dict)

    @property
    def client_endpoints(self) -> set[tuple[str, int]]:
        return {node.client_endpoint for node in self.nodes}

    def add_node(self) -> Node:
        """Appends a node (ports, directory, key) to the cluster's description; nothing runs
        yet."""
        index = len(self.nodes) + 1
        used = {self.gateway_port}.union(*(node.ports() for node in self.nodes))
        directory = self.base / f"node-{index}"
        directory.mkdir()
        if self.arrangement == "announce-port":
            port, bus, client, bus_client, decrypt, bus_decrypt = free_ports(6, exclude=used)
            key = self.base / "cluster.key"
            if not key.exists():
                write_key(key)
            node = Node(index, port, bus, NODE_HOST, client, bus_client, decrypt, bus_decrypt,
                        key, directory)
        else:
            # The client-side listener takes the node's own port number on CLIENT_SIDE_HOST.
            port, bus = free_ports(2, also_free_on=(CLIENT_SIDE_HOST,), exclude=used)
            node = Node(index, port, bus, CLIENT_SIDE_HOST, port, bus, self.gateway_port, 0,
                        write_key(self.base / f"node-{index}.key"), directory)
        self.nodes.append(node)
        return node

    def write_spiped_configs(self) -> tuple[Path, list[int], Path, list[int]]:
        """Writes the server-side and client-side configuration files for every node; returns
        each file with the ports its process must listen on."""
        server_text = "# data centre B: in front of the nodes\n\n"
        client_text = "# data centre A: one listener per node\n\n"
        server_sources: list[int] = []
        client_sources: list[int] = []
        pipe_source = f"[{PIPE_SOURCE_HOST}]"
        if self.arrangement == "announce-hostname":
            server_text += pipe_section(
                "cluster", "decrypt", f"[{NODE_HOST}]:{self.gateway_port}",
                routes=[(node.key, f"[{NODE_HOST}]:{node.port}") for node in self.nodes],
                bind_address=pipe_source)
            server_sources.append(self.gateway_port)
        for node in self.nodes:
            name = f"node-{node.index}"
            if self.arrangement == "announce-port":
                server_text += pipe_section(
                    name, "decrypt", f"[{NODE_HOST}]:{node.decrypt_port}",
                    f"[{NODE_HOST}]:{node.port}", node.key, bind_address=pipe_source)
                server_text += pipe_section(
                    f"{name}-bus", "decrypt", f"[{NODE_HOST}]:{node.bus_decrypt_port}",
                    f"[{NODE_HOST}]:{node.bus_port}", node.key, bind_address=pipe_source)
                client_text += pipe_section(
                    f"{name}-bus", "encrypt", f"[{NODE_HOST}]:{node.announced_bus_port}",
                    f"[{NODE_HOST}]:{node.bus_decrypt_port}", node.key)
                server_sources += [node.decrypt_port, node.bus_decrypt_port]
                client_sources.append(node.announced_bus_port)
            client_text += pipe_section(
                name, "encrypt", f"[{node.client_host}]:{node.client_port}",
                f"[{NODE_HOST}]:{node.decrypt_port}", node.key)
            client_sources.append(node.client_port)
        server_config = self.base / "server-side.conf"
        client_config = self.base / "client-side.conf"
        server_config.write_text(server_text)
        client_config.write_text(client_text)
        return server_config, server_sources, client_config, client_sources

    def start_node(self, node: Node) -> None:
        """Writes the node's redis.conf, starts redis-server and opens its admin connection."""
        conf = node.directory / "redis.conf"
        conf.write_text(node_conf(self.arrangement, node))
        process = self.group.start(f"redis-node-{node.index}",
                                   [find_program("redis-server"), conf])
        process.wait_until(lambda: {node.port, node.bus_port} <= listening_tcp_ports(),
                           f"listening on {node.port} and {node.bus_port}",
                           timeout=WAIT_SECONDS)
        # The one direct connection per node: the administrator's (DC B's loopback).
        node.admin = RespClient(node.port, timeout=WAIT_SECONDS)
        assert node.admin.command("CLIENT", "SETNAME", "admin") == "OK"
        node.node_id = node.admin.command("CLUSTER", "MYID").decode()

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
    """One `[name]` section of a spiped configuration file."""
    lines = [f"[{name}]", f"mode = {mode}", f"source = {source}"]
    if target is not None:
        lines.append(f"target = {target}")
    if key is not None:
        lines.append(f"key = {key}")
    lines += [f"route = {route_key} {address}" for route_key, address in routes]
    if bind_address is not None:
        lines.append(f"bind-address = {bind_address}")
    return "\n".join(lines) + "\n\n"


def check_spiped_config(config: Path) -> None:
    """`spiped --config FILE --check` must accept the file."""
    check = subprocess.run([str(OUR_SPIPED), "--config", str(config), "--check"],
                           capture_output=True, timeout=WAIT_SECONDS)
    assert check.returncode == 0, (f"--check refused {config}:\n"
                                   f"{(check.stdout + check.stderr).decode(errors='replace')}")


def start_spiped_config(group: ProcessGroup, name: str, config: Path,
                        sources: list[int]) -> ManagedProcess:
    """Checks `config`, then runs `spiped --config FILE -F` until it listens on every port of
    `sources`."""
    check_spiped_config(config)
    process = group.start(name, [OUR_SPIPED, "--config", config, "-F"])
    wait_listening(process, sources)
    return process


def wait_listening(process: ManagedProcess, ports: list[int]) -> None:
    process.wait_until(lambda: set(ports) <= listening_tcp_ports(), f"listening on {ports}",
                       timeout=WAIT_SECONDS)


def advertised_in_nodes(client: RespClient, arrangement: str) -> tuple[set, set, list[str]]:
    """From CLUSTER NODES: the client endpoints (ip:port, or hostname:port when the nodes
    prefer hostnames), the announced bus ports, and the flags of every node."""
    endpoints, bus_ports, flags = set(), set(), []
    for line in client.command("CLUSTER", "NODES").decode().splitlines():
        fields = line.split()
        ip_port, _, rest = fields[1].partition("@")     # ip:port@cport[,hostname]
        bus_port, _, hostname = rest.partition(",")
        ip, port = ip_port.rsplit(":", 1)
        endpoints.add((hostname if arrangement == "announce-hostname" else ip, int(port)))
        bus_ports.add(int(bus_port))
        flags.append(fields[2])
    return endpoints, bus_ports, flags


def wait_for_cluster(cluster: Cluster) -> None:
    """Waits until every node says cluster_state:ok and knows every node, then (at most
    ANNOUNCE_SPREAD_SECONDS more) until every node lists every node with its client-side
    listener and no handshake in progress: the announce settings spread by gossip. If they
    never do, the tests say where clients are sent instead."""
    known = f"cluster_known_nodes:{len(cluster.nodes)}"
    deadline = time.monotonic() + WAIT_SECONDS
    while not all("cluster_state:ok" in info and known in info
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
        answers = [advertised_in_nodes(n.admin, cluster.arrangement) for n in cluster.nodes]
        if all(endpoints == cluster.client_endpoints
               and not any("handshake" in f or "noaddr" in f for f in flags)
               for endpoints, _, flags in answers):
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
    cluster = Cluster(arrangement, base, ProcessGroup(base))
    started = time.monotonic()
    try:
        if arrangement == "announce-hostname":
            cluster.gateway_port = free_ports(1)[0]
        for _ in range(3):
            cluster.add_node()
        server_config, server_sources, client_config, client_sources = \
            cluster.write_spiped_configs()
        cluster.server_side = start_spiped_config(cluster.group, "spiped-server-side",
                                                  server_config, server_sources)
        cluster.client_side = start_spiped_config(cluster.group, "spiped-client-side",
                                                  client_config, client_sources)
        for node in cluster.nodes:
            cluster.start_node(node)
        created = redis_cli("--cluster", "create",
                            *[node.admin_address(arrangement) for node in cluster.nodes],
                            "--cluster-yes", timeout=WAIT_SECONDS * 2)
        output = (created.stdout + created.stderr).decode(errors="replace")
        assert created.returncode == 0 and "All 16384 slots covered" in output, output
        wait_for_cluster(cluster)
        cluster.timings["start"] = round(time.monotonic() - started, 2)
        yield cluster
        cluster.assert_running()
        print(f"\n{arrangement}: {cluster.timings}")
    finally:
        for node in cluster.nodes:
            if node.admin is not None:
                node.admin.close()
        cluster.group.stop_all()
        if not os.environ.get("KEEP_SCENARIO_DIR"):
            shutil.rmtree(base, ignore_errors=True)


def assert_cluster_answers_name_client_side_listeners(cluster: Cluster) -> None:
    """CLUSTER SLOTS, SHARDS and NODES, asked through each node's pipe, give every node's
    client-side listener as its client endpoint, never the node's own address."""
    for node in cluster.nodes:
        with EndpointClient(node.client_endpoint) as client:
            # The pipe really leads to this node.
            assert client.command("CLUSTER", "MYID").decode() == node.node_id

            slots = slots_endpoints(client)
            owners = {endpoint for endpoint, _ in slots}
            assert owners <= cluster.client_endpoints, slots
            assert sum(end - start + 1 for _, (start, end) in slots) == 16384

            shard_endpoints = set()
            for shard in client.command("CLUSTER", "SHARDS"):
                for entry in pairs(shard)["nodes"]:
                    fields = pairs(entry)
                    shard_endpoints.add((fields["endpoint"].decode(), int(fields["port"])))
            assert shard_endpoints == cluster.client_endpoints

            endpoints, bus_ports, _ = advertised_in_nodes(client, cluster.arrangement)
            assert endpoints == cluster.client_endpoints
            # The bus: through its own pipes (announce-port) or direct (announce-hostname).
            assert bus_ports == {n.announced_bus_port for n in cluster.nodes}
    if cluster.arrangement == "announce-port":
        # Each node's bus port is reached by its peers, only through the bus pipes.
        for node in cluster.nodes:
            peers = established_peers(node.bus_port)
            assert (len(peers) >= len(cluster.nodes) - 1
                    and set(peers) == {PIPE_SOURCE_HOST}), (node.index, peers)
    cluster.assert_running()


def test_cluster_answers_name_only_client_side_listeners(cluster: Cluster):
    """CLUSTER SLOTS, SHARDS and NODES through every pipe name only client-side listeners."""
    assert {endpoint for endpoint, _ in slots_endpoints(cluster.nodes[0].admin)} == \
        cluster.client_endpoints
    assert_cluster_answers_name_client_side_listeners(cluster)


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
    """CLIENT LIST entries on `node` that are neither the administrator's connection, nor the
    connection another node keeps open after MIGRATE (a reshard: node to node inside DC B,
    last command RESTORE-ASKING), nor a connection from the server-side spiped (which connects
    from PIPE_SOURCE_HOST)."""
    entries = node.admin.command("CLIENT", "LIST").decode().splitlines()
    return [entry for entry in entries
            if " name=admin " not in entry and " cmd=restore-asking " not in entry
            and f" addr={PIPE_SOURCE_HOST}:" not in entry]


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
    one, two, three = cluster.nodes[:3]
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


def test_adding_a_node_is_a_pipe_on_both_sides_and_a_sighup(cluster: Cluster):
    """The README's procedure for a new node: add its pipe to both configuration files and
    SIGHUP both processes (the old pipes keep running), start the node, `redis-cli --cluster
    add-node` and reshard. The new node is then advertised only by its client-side listener,
    and redis-cli and redis-py reach the keys that moved to it through that listener."""
    first = cluster.nodes[0]
    keys = [f"grow:{i}" for i in range(KEY_COUNT)]
    with RedisCluster(host=first.client_host, port=first.client_port,
                      socket_timeout=WAIT_SECONDS, socket_connect_timeout=WAIT_SECONDS) as old:
        for key in keys:
            assert old.set(key, f"g-{key}") is True

    started = time.monotonic()
    node = cluster.add_node()
    server_config, server_sources, client_config, client_sources = \
        cluster.write_spiped_configs()
    for process, config, sources in ((cluster.server_side, server_config, server_sources),
                                     (cluster.client_side, client_config, client_sources)):
        check_spiped_config(config)
        os.kill(process.popen.pid, signal.SIGHUP)
        wait_listening(process, sources)
    cluster.start_node(node)
    added = redis_cli("--cluster", "add-node", node.admin_address(cluster.arrangement),
                      first.admin_address(cluster.arrangement), timeout=WAIT_SECONDS)
    output = (added.stdout + added.stderr).decode(errors="replace")
    assert added.returncode == 0 and "New node added correctly" in output, output
    wait_for_cluster(cluster)
    resharded = redis_cli("--cluster", "reshard", first.admin_address(cluster.arrangement),
                          "--cluster-from", first.node_id, "--cluster-to", node.node_id,
                          "--cluster-slots", "1000", "--cluster-yes", timeout=WAIT_SECONDS * 2)
    assert resharded.returncode == 0, (resharded.stdout + resharded.stderr).decode(
        errors="replace")[-3000:]
    cluster.timings["add node + reshard 1000 slots"] = round(time.monotonic() - started, 2)
    assert_cluster_answers_name_client_side_listeners(cluster)
    moved_keys = cluster.node_key_counts("grow:")[-1]
    cluster.timings["keys on the new node"] = moved_keys
    assert moved_keys > 0

    replies, redirects = run_redis_cli_cluster(cluster, [f"GET {k}" for k in keys])
    assert replies == [f"g-{k}" for k in keys]
    assert {endpoint for _, endpoint in redirects} == cluster.client_endpoints
    with RedisCluster(host=first.client_host, port=first.client_port,
                      socket_timeout=WAIT_SECONDS, socket_connect_timeout=WAIT_SECONDS) as new:
        assert {(n.host, n.port) for n in new.get_nodes()} == cluster.client_endpoints
        assert [new.get(key) for key in keys] == [f"g-{key}".encode() for key in keys]
        assert clients_not_through_the_pipe(node) == []
        assert clients_through_the_pipe(node) >= 1
    cluster.assert_running()
