"""Reload and key rotation of `spiped --config` (and of a command-line pipe) under load, with
real servers: SIGHUP re-reads the configuration and every key file, applies the new settings,
keys and targets to new connections only, starts and stops listeners, and leaves every open
connection alone; a file with errors changes nothing. A decrypt pipe holding several keys
serves the holder of any of them (rotation), or sends each key's holder to its own target
(routing by key).

Every process runs on 127.0.0.1 on private ports and is stopped at teardown; every client
loop is bounded in count and time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import OUR_SPIPED, REF_SPIPED, require_program
from scenario_support import (
    SPIPED_TIMEOUT_SECONDS, ProcessGroup, RespClient, free_tcp_port, resolve_binary,
    start_spiped, tcp_address, write_key)
from spiped_config import (
    RELOAD_FAILED, RELOAD_SUMMARY, config_text, pipe_section, replace_key, sighup_and_wait,
    write_config)
from spiped_testkit import ThreadedServer, is_listening, shutdown_quietly, wait_until

OUR_SPIPE = resolve_binary("OUR_SPIPE", ".build/release/spipe")

# Upper bounds of every client loop (they normally stop long before, when told to).
TRAFFIC_TIME_LIMIT_SECONDS = 60
TRAFFIC_MAX_ITERATIONS = 200_000
# How much traffic each stage of a test must see before the next stage starts.
FRESH_CONNECTIONS_PER_STAGE = 30
PERSISTENT_REQUESTS_PER_STAGE = 20
# The rotation test runs longer stages, to rotate under a sustained load.
ROTATION_STAGE = {"fresh": 200, "persistent": 100}


# --- processes ----------------------------------------------------------------------------

class ConfigSpiped:
    """Our `spiped --config FILE -F`, started with `text` as FILE; waits until every port in
    `ports` listens. `reload(text)` rewrites the file (atomically) and sends SIGHUP."""

    def __init__(self, group: ProcessGroup, directory: Path, name: str, text: str,
                 ports: list[int]):
        self.path = write_config(directory / f"{name}.conf", text)
        self.process = group.start(name, [OUR_SPIPED, "--config", self.path, "-F"])
        for port in ports:
            self.process.wait_tcp_listening(port)

    def reload(self, text: str | None = None) -> tuple[bool, str]:
        """(True for a summary line / False for "reload failed", the log lines it wrote)."""
        if text is not None:
            write_config(self.path, text)
        outcome = sighup_and_wait(self.process.popen.pid, self.process.log_text,
                                  self.process.is_running)
        self.process.assert_running()
        return outcome

    def log(self) -> str:
        return self.process.log_text()


def unique_name(prefix: str) -> str:
    """A process name no other test of the session uses (it names the log file)."""
    return f"{prefix}-{free_tcp_port()}"


# --- targets and clients -------------------------------------------------------------------

class TaggedLineServer(ThreadedServer):
    """A line server on 127.0.0.1 that answers every line with "<tag> <line>", so a client
    knows which server its connection reached. Counts connections accepted and still open."""

    def __init__(self, tag: str):
        self.tag = tag.encode()
        self.lock = threading.Lock()
        self.accepted_count = 0
        self.open_count = 0
        self.errors: list[OSError] = []
        super().__init__(tcp_address(0))
        self.address = tcp_address(self.port)

    def accepted(self, conn):
        with self.lock:
            self.accepted_count += 1
            self.open_count += 1
        threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            with conn, conn.makefile("rb") as reader:
                for line in reader:
                    conn.sendall(self.tag + b" " + line)
        except OSError as error:
            self.errors.append(error)
        finally:
            with self.lock:
                self.open_count -= 1


class LineClient:
    """One connection to a TaggedLineServer (usually through pipes)."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def ask(self, text: str) -> str:
        """Sends one line; returns the tag of the server that echoed it."""
        self.sock.sendall(text.encode() + b"\n")
        line = self.reader.readline()
        if not line.endswith(b"\n"):
            raise ConnectionError(f"connection closed (got {line!r})")
        tag, _, echoed = line[:-1].partition(b" ")
        if echoed != text.encode():
            raise ConnectionError(f"garbled echo {line!r} for {text!r}")
        return tag.decode()

    def close(self):
        self.reader.close()
        shutdown_quietly(self.sock)
        self.sock.close()


def tag_of_fresh_connection(port: int, text: str = "hello") -> str:
    client = LineClient(port)
    try:
        return client.ask(text)
    finally:
        client.close()


def refused_through(port: int) -> bool:
    """True when a connection to `port` gets no answer to a line: refused outright, or
    closed (EOF or reset) before any reply."""
    try:
        client = LineClient(port, timeout=SPIPED_TIMEOUT_SECONDS + 5)
    except ConnectionRefusedError:
        return True
    try:
        client.ask("anyone there?")
        return False
    except (ConnectionError, OSError):
        return True
    finally:
        client.close()


def redis_ping_through(port: int) -> bool:
    """True when a fresh connection to `port` gets PONG from Redis."""
    try:
        with RespClient(port, timeout=SPIPED_TIMEOUT_SECONDS + 5) as client:
            return client.command("PING") == "PONG"
    except (ConnectionError, OSError):
        return False


def spipe_ping(spipe: Path, port: int, key: Path) -> bool:
    """`spipe -t [127.0.0.1]:port -k key` with "PING\\r\\n" on standard input: True when Redis
    answered +PONG through it."""
    result = subprocess.run([spipe, "-t", tcp_address(port), "-k", key], input=b"PING\r\n",
                            capture_output=True, timeout=SPIPED_TIMEOUT_SECONDS + 10)
    return result.returncode == 0 and result.stdout == b"+PONG\r\n"


class RedisTraffic:
    """Redis clients that run until `finish()`: `persistent` connections opened now (each
    one SET/GET loop on its own key, for its whole life) and `fresh` loops that open a new
    connection for every SET/GET. Every wrong or missing reply is recorded as a failure; a
    persistent connection that fails is not reopened (it counts as dropped)."""

    def __init__(self, port: int, persistent: int = 4, fresh: int = 3):
        self.port = port
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + TRAFFIC_TIME_LIMIT_SECONDS
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.commands = 0
        self.fresh_done = 0
        self.fresh_failed = 0
        self.persistent_done = [0] * persistent
        self.persistent_alive = [True] * persistent
        self.clients = [RespClient(port) for _ in range(persistent)]
        # Redis's own id of each connection: the same id at the end proves the connection
        # Redis sees is the one opened here, not a reconnection.
        self.client_ids = [client.command("CLIENT", "ID") for client in self.clients]
        self.threads = ([threading.Thread(target=self._persistent, args=(i,), daemon=True)
                         for i in range(persistent)]
                        + [threading.Thread(target=self._fresh, args=(i,), daemon=True)
                           for i in range(fresh)])
        for thread in self.threads:
            thread.start()

    def _running(self, iteration: int) -> bool:
        return (not self.stopping.is_set() and iteration < TRAFFIC_MAX_ITERATIONS
                and time.monotonic() < self.deadline)

    @staticmethod
    def _set_get(client: RespClient, key: str, value: str) -> None:
        reply = client.command("SET", key, value)
        if reply != "OK":
            raise ConnectionError(f"SET {key}: {reply!r}")
        reply = client.command("GET", key)
        if reply != value.encode():
            raise ConnectionError(f"GET {key}: {reply!r}, expected {value!r}")

    def _persistent(self, index: int) -> None:
        client = self.clients[index]
        iteration = 0
        while self._running(iteration):
            try:
                self._set_get(client, f"reload:persistent:{index}", f"{index}-{iteration}")
            except Exception as error:  # noqa: BLE001 - every failure is the test's business
                with self.lock:
                    self.failures.append(f"persistent connection {index}, request "
                                         f"{iteration}: {error!r}")
                    self.persistent_alive[index] = False
                return
            with self.lock:
                self.commands += 2
                self.persistent_done[index] += 1
            iteration += 1

    def _fresh(self, index: int) -> None:
        iteration = 0
        while self._running(iteration):
            try:
                with RespClient(self.port, timeout=SPIPED_TIMEOUT_SECONDS + 5) as client:
                    self._set_get(client, f"reload:fresh:{index}", f"{index}-{iteration}")
                with self.lock:
                    self.commands += 2
                    self.fresh_done += 1
            except Exception as error:  # noqa: BLE001
                with self.lock:
                    self.fresh_failed += 1
                    if len(self.failures) < 50:
                        self.failures.append(f"fresh connection {index}/{iteration}: {error!r}")
                time.sleep(0.01)
            iteration += 1

    def snapshot(self) -> tuple[int, int, list[int]]:
        with self.lock:
            return self.fresh_done, self.fresh_failed, list(self.persistent_done)

    def wait_for_progress(self, fresh: int = FRESH_CONNECTIONS_PER_STAGE,
                          persistent: int = PERSISTENT_REQUESTS_PER_STAGE,
                          timeout: float = 20.0) -> None:
        """Waits until `fresh` more fresh connections have been tried and each live
        persistent connection has answered `persistent` more requests."""
        fresh_start, failed_start, persistent_start = self.snapshot()

        def enough() -> bool:
            done, failed, counts = self.snapshot()
            alive = [i for i, up in enumerate(self.persistent_alive) if up]
            return (done + failed - fresh_start - failed_start >= fresh
                    and all(counts[i] - persistent_start[i] >= persistent for i in alive))

        wait_until(enough, timeout=timeout, what="client traffic through the pipe")

    def finish(self) -> None:
        """Stops the loops, checks each persistent connection is still Redis's same
        connection, and closes them."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=20)
        for index, client in enumerate(self.clients):
            if self.persistent_alive[index]:
                try:
                    same = client.command("CLIENT", "ID") == self.client_ids[index]
                except Exception as error:  # noqa: BLE001
                    same = False
                    self.failures.append(f"persistent connection {index} at the end: {error!r}")
                if not same:
                    self.persistent_alive[index] = False
                    self.failures.append(f"persistent connection {index} is no longer the "
                                         f"connection Redis saw first")
            client.close()


# --- rotation under load -------------------------------------------------------------------

class RotationRig:
    """A decrypt config process in front of Redis and an encrypt config process in front of
    it, each with one pipe [redis] holding key OLD, plus the rotation steps."""

    def __init__(self, group: ProcessGroup, directory: Path, redis_port: int):
        self.directory = directory
        self.old_key = write_key(directory / "old.key")
        self.new_key = write_key(directory / "new.key")
        self.redis_port = redis_port
        self.decrypt_port = free_tcp_port()
        self.encrypt_port = free_tcp_port()
        self.decrypt = ConfigSpiped(group, directory, unique_name("rotation-d"),
                                    self.decrypt_text([self.old_key]), [self.decrypt_port])
        self.encrypt = ConfigSpiped(group, directory, unique_name("rotation-e"),
                                    self.encrypt_text(self.old_key), [self.encrypt_port])

    def decrypt_text(self, keys: list[Path]) -> str:
        return config_text(pipe_section(
            "redis", mode="decrypt", source=tcp_address(self.decrypt_port),
            target=tcp_address(self.redis_port), key=[str(k) for k in keys],
            timeout=SPIPED_TIMEOUT_SECONDS))

    def encrypt_text(self, key: Path) -> str:
        return config_text(pipe_section(
            "redis", mode="encrypt", source=tcp_address(self.encrypt_port),
            target=tcp_address(self.decrypt_port), key=str(key)))

    # The three steps of the documented rotation; each returns the reload's log lines.
    def add_new_key_on_decrypt_side(self) -> str:
        return self._expect_updated(self.decrypt.reload(
            self.decrypt_text([self.old_key, self.new_key])))

    def switch_encrypt_side_to_new_key(self) -> str:
        return self._expect_updated(self.encrypt.reload(self.encrypt_text(self.new_key)))

    def remove_old_key_on_decrypt_side(self) -> str:
        return self._expect_updated(self.decrypt.reload(self.decrypt_text([self.new_key])))

    @staticmethod
    def _expect_updated(outcome: tuple[bool, str]) -> str:
        ok, log = outcome
        assert ok, f"reload failed:\n{log}"
        assert RELOAD_SUMMARY.findall(log) == [
            "reload: 0 added, 0 removed, 1 updated (redis), 0 unchanged"], log
        return log


def test_three_step_key_rotation_under_load(processes, redis_port, tmp_path):
    rig = RotationRig(processes, tmp_path, redis_port)
    # Controls: before the rotation, a client holding only OLD gets through, one holding only
    # NEW does not (so the refusal checked at the end is about the key, not the client).
    assert spipe_ping(OUR_SPIPE, rig.decrypt_port, rig.old_key)
    assert not spipe_ping(OUR_SPIPE, rig.decrypt_port, rig.new_key)

    traffic = RedisTraffic(rig.encrypt_port, persistent=8, fresh=4)
    try:
        traffic.wait_for_progress(**ROTATION_STAGE)
        rig.add_new_key_on_decrypt_side()
        traffic.wait_for_progress(**ROTATION_STAGE)
        # Between steps 1 and 2 the decrypt side serves both keys.
        assert spipe_ping(OUR_SPIPE, rig.decrypt_port, rig.old_key)
        assert spipe_ping(OUR_SPIPE, rig.decrypt_port, rig.new_key)
        rig.switch_encrypt_side_to_new_key()
        traffic.wait_for_progress(**ROTATION_STAGE)
        rig.remove_old_key_on_decrypt_side()
        traffic.wait_for_progress(**ROTATION_STAGE)
    finally:
        traffic.finish()

    fresh_done, fresh_failed, persistent_done = traffic.snapshot()
    print(f"\nrotation under load: {traffic.commands} Redis commands answered "
          f"({fresh_done} fresh connections, {sum(persistent_done)} SET/GET pairs on "
          f"{len(persistent_done)} persistent connections), {fresh_failed} fresh connections "
          f"failed, {len(traffic.failures)} failures")
    assert traffic.failures == [], traffic.failures[:10]
    assert all(traffic.persistent_alive), "a persistent connection was dropped"
    assert fresh_failed == 0

    # After the last step a client holding only OLD is refused, by spipe and by the
    # reference spiped -e alike; a NEW holder gets through.
    assert not spipe_ping(OUR_SPIPE, rig.decrypt_port, rig.old_key)
    assert spipe_ping(OUR_SPIPE, rig.decrypt_port, rig.new_key)
    old_client_port = free_tcp_port()
    start_spiped(processes, REF_SPIPED, "-e", tcp_address(old_client_port),
                 tcp_address(rig.decrypt_port), rig.old_key, f"old-key-e-{old_client_port}")
    assert not redis_ping_through(old_client_port)
    assert redis_ping_through(rig.encrypt_port)
    rig.decrypt.process.assert_running()
    rig.encrypt.process.assert_running()


def test_rotation_out_of_order_refuses_new_connections(processes, redis_port, tmp_path):
    """Switching the encrypt side before the decrypt side holds the new key breaks every new
    connection (while open ones keep working): the detector the test above relies on."""
    rig = RotationRig(processes, tmp_path, redis_port)
    traffic = RedisTraffic(rig.encrypt_port, persistent=2, fresh=2)
    try:
        traffic.wait_for_progress(fresh=10, persistent=5)
        rig.switch_encrypt_side_to_new_key()
        done_before, failed_before, _ = traffic.snapshot()
        traffic.wait_for_progress(fresh=10, persistent=5)
        done_after, failed_after, _ = traffic.snapshot()
    finally:
        traffic.finish()
    # Only a connection each fresh loop had in flight during the reload may still succeed.
    assert done_after - done_before <= 2, "new connections with the wrong key got through"
    assert failed_after - failed_before >= 8
    assert all(traffic.persistent_alive), traffic.failures[:5]
    assert not redis_ping_through(rig.encrypt_port)


# --- reload under load: add, remove, change a target ---------------------------------------

class LineTraffic:
    """Persistent line clients that keep asking until `finish()` and record the tags of the
    servers that answered; plus an optional fresh-connection loop on one port."""

    def __init__(self, ports: dict[str, int], fresh_port: int | None = None):
        self.stopping = threading.Event()
        self.deadline = time.monotonic() + TRAFFIC_TIME_LIMIT_SECONDS
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.tags: dict[str, list[str]] = {name: [] for name in ports}
        self.fresh_tags: list[str] = []
        self.clients = {name: LineClient(port) for name, port in ports.items()}
        self.threads = [threading.Thread(target=self._persistent, args=(name,), daemon=True)
                        for name in ports]
        if fresh_port is not None:
            self.threads.append(threading.Thread(target=self._fresh, args=(fresh_port,),
                                                 daemon=True))
        for thread in self.threads:
            thread.start()

    def _running(self, iteration: int) -> bool:
        return (not self.stopping.is_set() and iteration < TRAFFIC_MAX_ITERATIONS
                and time.monotonic() < self.deadline)

    def _persistent(self, name: str) -> None:
        iteration = 0
        while self._running(iteration):
            try:
                tag = self.clients[name].ask(f"{name} {iteration}")
            except Exception as error:  # noqa: BLE001
                with self.lock:
                    self.failures.append(f"persistent {name}/{iteration}: {error!r}")
                return
            with self.lock:
                self.tags[name].append(tag)
            iteration += 1
            time.sleep(0.002)

    def _fresh(self, port: int) -> None:
        iteration = 0
        while self._running(iteration):
            try:
                tag = tag_of_fresh_connection(port, f"fresh {iteration}")
            except Exception as error:  # noqa: BLE001
                with self.lock:
                    self.failures.append(f"fresh {iteration}: {error!r}")
                time.sleep(0.01)
            else:
                with self.lock:
                    self.fresh_tags.append(tag)
            iteration += 1

    def counts(self) -> dict[str, int]:
        with self.lock:
            return {name: len(tags) for name, tags in self.tags.items()}

    def wait_for_progress(self, requests: int = 20, timeout: float = 15.0) -> None:
        start = self.counts()
        wait_until(lambda: all(count - start[name] >= requests
                               for name, count in self.counts().items()),
                   timeout=timeout, what="traffic on every persistent connection")

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=20)

    def close(self) -> None:
        for client in self.clients.values():
            client.close()


def echo_decrypt_section(name: str, port: int, target: TaggedLineServer, key: Path,
                         **extra) -> str:
    return pipe_section(name, mode="decrypt", source=tcp_address(port), target=target.address,
                        key=str(key), timeout=SPIPED_TIMEOUT_SECONDS, **extra)


def encrypt_sections(names_ports: dict[str, tuple[int, int]], key: Path) -> str:
    """Encrypt pipes NAME: source port -> decrypt port, all with `key`."""
    return config_text(*(pipe_section(name, mode="encrypt", source=tcp_address(source),
                                      target=tcp_address(target), key=str(key))
                         for name, (source, target) in names_ports.items()))


@pytest.fixture
def line_servers():
    servers: dict[str, TaggedLineServer] = {}

    def make(*tags: str) -> list[TaggedLineServer]:
        for tag in tags:
            servers[tag] = TaggedLineServer(tag)
        return [servers[tag] for tag in tags]

    yield make
    for server in servers.values():
        server.close()


def test_reload_under_load_adds_removes_and_retargets(processes, tmp_path, line_servers):
    a1, a2, b, c = line_servers("a1", "a2", "b", "c")
    key = write_key(tmp_path / "pipes.key")
    decrypt_ports = {name: free_tcp_port() for name in "abc"}
    encrypt_ports = {name: free_tcp_port() for name in "abc"}
    # The client side: one encrypt pipe per decrypt pipe (c's has no server yet).
    client_side = ConfigSpiped(processes, tmp_path, unique_name("pipes-e"),
                               encrypt_sections({n: (encrypt_ports[n], decrypt_ports[n])
                                                 for n in "abc"}, key),
                               list(encrypt_ports.values()))
    before = config_text(echo_decrypt_section("a", decrypt_ports["a"], a1, key),
                         echo_decrypt_section("b", decrypt_ports["b"], b, key))
    after = config_text(echo_decrypt_section("a", decrypt_ports["a"], a2, key),
                        echo_decrypt_section("c", decrypt_ports["c"], c, key))
    server_side = ConfigSpiped(processes, tmp_path, unique_name("pipes-d"), before,
                               [decrypt_ports["a"], decrypt_ports["b"]])
    assert not is_listening(tcp_address(decrypt_ports["c"]))

    # Two persistent connections on each of A and B, and new connections on A all along.
    traffic = LineTraffic({"a-1": encrypt_ports["a"], "a-2": encrypt_ports["a"],
                           "b-1": encrypt_ports["b"], "b-2": encrypt_ports["b"]},
                          fresh_port=encrypt_ports["a"])
    try:
        traffic.wait_for_progress()
        ok, log = server_side.reload(after)
        assert ok, log
        assert RELOAD_SUMMARY.findall(log) == [
            "reload: 1 added (c), 1 removed (b), 1 updated (a), 0 unchanged"], log
        traffic.wait_for_progress()
        # B stops listening once every event loop has let go of it.
        wait_until(lambda: not is_listening(tcp_address(decrypt_ports["b"])), timeout=10,
                   what="the removed pipe's listener to close")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", decrypt_ports["b"]), timeout=5).close()
        b_accepted = b.accepted_count
        assert refused_through(encrypt_ports["b"])
        # C serves.
        assert [tag_of_fresh_connection(encrypt_ports["c"]) for _ in range(5)] == ["c"] * 5
        # Open connections on A and B are still flowing, to their original servers.
        traffic.wait_for_progress()
    finally:
        traffic.stop()
    # New connections on A go to the new target only.
    a1_accepted = a1.accepted_count
    assert [tag_of_fresh_connection(encrypt_ports["a"]) for _ in range(10)] == ["a2"] * 10
    assert a1.accepted_count == a1_accepted
    assert b.accepted_count == b_accepted, "a connection reached the removed pipe's target"

    assert traffic.failures == [], traffic.failures[:10]
    for name, tags in traffic.tags.items():
        original = "a1" if name.startswith("a") else "b"
        assert tags and set(tags) == {original}, f"{name} answered by {sorted(set(tags))}"
    assert traffic.fresh_tags and set(traffic.fresh_tags) <= {"a1", "a2"}
    assert traffic.fresh_tags[-1] == "a2"
    # The drained connections end when their clients close them, and only then.
    wait_until(lambda: a1.open_count == 2 and b.open_count == 2, timeout=5,
               what="only the persistent connections to remain open on the old targets")
    traffic.close()
    wait_until(lambda: a1.open_count == 0 and b.open_count == 0, timeout=10,
               what="the old targets' connections to close")
    assert not (a1.errors or b.errors), (a1.errors, b.errors)
    # One summary line in the whole log, and nothing failed.
    assert len(RELOAD_SUMMARY.findall(server_side.log())) == 1
    assert RELOAD_FAILED not in server_side.log()
    server_side.process.assert_running()
    client_side.process.assert_running()


# --- a broken file on reload ---------------------------------------------------------------

def test_broken_file_on_reload_keeps_the_running_configuration(processes, tmp_path,
                                                               line_servers):
    a_server, b_server, c_server = line_servers("a", "b", "c")
    key = write_key(tmp_path / "pipes.key")
    missing_key = tmp_path / "no-such.key"
    decrypt_ports = {name: free_tcp_port() for name in "abc"}
    encrypt_ports = {name: free_tcp_port() for name in "abc"}
    client_side = ConfigSpiped(processes, tmp_path, unique_name("broken-e"),
                               encrypt_sections({n: (encrypt_ports[n], decrypt_ports[n])
                                                 for n in "abc"}, key),
                               list(encrypt_ports.values()))
    section_a = echo_decrypt_section("a", decrypt_ports["a"], a_server, key)
    section_b = echo_decrypt_section("b", decrypt_ports["b"], b_server, key)
    server_side = ConfigSpiped(processes, tmp_path, unique_name("broken-d"),
                               config_text(section_a, section_b),
                               [decrypt_ports["a"], decrypt_ports["b"]])
    path = server_side.path
    persistent = {"a": LineClient(encrypt_ports["a"]), "b": LineClient(encrypt_ports["b"])}

    def serving_as_before() -> None:
        for name in "ab":
            assert persistent[name].ask("still there?") == name
            assert tag_of_fresh_connection(encrypt_ports[name]) == name
        assert not is_listening(tcp_address(decrypt_ports["c"]))
        server_side.process.assert_running()

    # Each broken file also retargets a to c's server and adds pipe c: none of it may apply.
    retargeted_a = echo_decrypt_section("a", decrypt_ports["a"], c_server, key)
    section_c_missing_key = echo_decrypt_section("c", decrypt_ports["c"], c_server,
                                                 missing_key)
    broken_files = {
        # An unknown option on line 7 (a's section is lines 1-6).
        "unknown option": (config_text(retargeted_a + "tiemout = 3\n", section_b),
                           [f"{path}:7: unknown option 'tiemout' (did you mean 'timeout'?)"]),
        # A key file that does not exist, named on line 19 (c's section is lines 15-20).
        "missing key file": (config_text(retargeted_a, section_b, section_c_missing_key),
                             [f"{path}:19: cannot open key file '{missing_key}'"]),
        # Both at once: every error is logged, not only the first kind found.
        "both": (config_text(retargeted_a + "tiemout = 3\n", section_b, section_c_missing_key),
                 [f"{path}:7: unknown option 'tiemout'",
                  f"{path}:20: cannot open key file '{missing_key}'"]),
    }
    try:
        for what, (text, expected_errors) in broken_files.items():
            ok, log = server_side.reload(text)
            assert not ok, f"{what}: the broken file was accepted:\n{log}"
            error_lines = [line for line in log.splitlines() if ": error: " in line]
            for expected in expected_errors:
                assert any(expected in line for line in error_lines), (
                    f"{what}: no error line containing {expected!r}:\n{log}")
            assert len(error_lines) == len(expected_errors) + 1, f"{what}:\n{log}"
            assert error_lines[-1].endswith(RELOAD_FAILED), log
            assert not RELOAD_SUMMARY.findall(log), log
            serving_as_before()

        # The fixed file reloads fine.
        ok, log = server_side.reload(config_text(
            retargeted_a, section_b, echo_decrypt_section("c", decrypt_ports["c"], c_server,
                                                          key)))
        assert ok, log
        assert RELOAD_SUMMARY.findall(log) == [
            "reload: 1 added (c), 0 removed, 1 updated (a), 1 unchanged (b)"], log
        server_side.process.wait_tcp_listening(decrypt_ports["c"], timeout=5)
        assert tag_of_fresh_connection(encrypt_ports["c"]) == "c"
        assert tag_of_fresh_connection(encrypt_ports["a"]) == "c"
        # The connection opened before all of this still reaches a's first server.
        assert persistent["a"].ask("and now?") == "a"
        assert persistent["b"].ask("and now?") == "b"
    finally:
        for client in persistent.values():
            client.close()
    client_side.process.assert_running()


def test_broken_file_at_start_reports_every_error(tmp_path):
    """The same file at start: nothing starts, and both kinds of error are reported, as
    `--check` reports them."""
    port = free_tcp_port()
    missing_key = tmp_path / "no-such.key"
    path = write_config(tmp_path / "broken.conf", config_text(pipe_section(
        "a", mode="decrypt", source=tcp_address(port), target=tcp_address(free_tcp_port()),
        key=str(missing_key), tiemout=3)))
    expected = [f"{path}:5: cannot open key file '{missing_key}'",
                f"{path}:6: unknown option 'tiemout'"]
    for argv in ([OUR_SPIPED, "--config", path, "-F"], [OUR_SPIPED, "--config", path, "--check"]):
        result = subprocess.run(argv, capture_output=True, timeout=10)
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode == 1, stderr
        lines = stderr.splitlines()
        assert len(lines) == 2 and all(e in line for e, line in zip(expected, lines)), stderr
    assert not is_listening(tcp_address(port))


# --- Redis and MariaDB through one pair of processes ---------------------------------------

def test_redis_and_mariadb_through_one_pair_of_processes(processes, tmp_path, redis_port,
                                                          mariadb, shared_key):
    ports = {name: (free_tcp_port(), free_tcp_port()) for name in ("redis", "mariadb")}
    targets = {"redis": redis_port, "mariadb": mariadb.port}
    server_text = config_text(*(pipe_section(
        name, mode="decrypt", source=tcp_address(ports[name][1]),
        target=tcp_address(targets[name]), key=str(shared_key),
        timeout=SPIPED_TIMEOUT_SECONDS) for name in ports))
    server_side = ConfigSpiped(processes, tmp_path, unique_name("two-d"), server_text,
                               [p[1] for p in ports.values()])
    client_side = ConfigSpiped(processes, tmp_path, unique_name("two-e"),
                               encrypt_sections(ports, shared_key),
                               [p[0] for p in ports.values()])
    redis_entry, mariadb_entry = ports["redis"][0], ports["mariadb"][0]

    # One MariaDB session that spans a SIGHUP of both processes (SLEEP in the middle).
    rows = 2000
    values = ",".join(f"({i},'row-{i}')" for i in range(1, rows + 1))
    script = (f"DROP TABLE IF EXISTS two_pipes;\n"
              f"CREATE TABLE two_pipes (id INT PRIMARY KEY, payload VARCHAR(40)) ENGINE=InnoDB;\n"
              f"INSERT INTO two_pipes VALUES {values};\n"
              f"SELECT SLEEP(1.5);\n"
              f"SELECT COUNT(*), SUM(id) FROM two_pipes;\n")
    script_path = tmp_path / "session.sql"
    script_path.write_text(script)
    with open(script_path, "rb") as script_file:
        session = subprocess.Popen(
            [require_program("mariadb"), "--no-defaults", "-h", "127.0.0.1", "-P",
             str(mariadb_entry), "--protocol=TCP", "-u", mariadb.user,
             f"-p{mariadb.password}", "--batch", "--skip-column-names", mariadb.database],
            stdin=script_file, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with RespClient(redis_entry) as redis:
            assert redis.command("SET", "two-pipes", "value") == "OK"
            # The session is inside its SLEEP once the rows are there.
            wait_until(lambda: mariadb.admin_sql(
                "SELECT COUNT(*) FROM information_schema.processlist "
                "WHERE info LIKE 'SELECT SLEEP%'").strip() == "1",
                timeout=30, what="the MariaDB session to reach its SLEEP", interval=0.05)
            for side in (server_side, client_side):
                ok, log = side.reload()
                assert ok, log
                assert RELOAD_SUMMARY.findall(log) == [
                    "reload: 0 added, 0 removed, 0 updated, 2 unchanged (redis, mariadb)"], log
            # The Redis connection opened before the reloads still works, and so do new ones.
            assert redis.command("GET", "two-pipes") == b"value"
        assert redis_ping_through(redis_entry)
        output, errors = session.communicate(timeout=60)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait(timeout=10)
    assert session.returncode == 0, errors.decode(errors="replace")
    assert output.split() == [b"0", str(rows).encode(), str(rows * (rows + 1) // 2).encode()]
    # A new MariaDB session through the same processes sees the same rows.
    result = mariadb.client(mariadb_entry, "SELECT COUNT(*) FROM two_pipes")
    assert result.returncode == 0 and result.stdout.strip() == str(rows).encode(), result
    server_side.process.assert_running()
    client_side.process.assert_running()


# --- command line: SIGHUP re-reads the -k file ---------------------------------------------

def test_command_line_sighup_rereads_the_key_file(processes, tmp_path, redis_port):
    old_bytes, new_bytes = os.urandom(32), os.urandom(32)
    server_key = write_key(tmp_path / "server.key", old_bytes)
    old_copy = write_key(tmp_path / "old-copy.key", old_bytes)
    new_copy = write_key(tmp_path / "new-copy.key", new_bytes)
    decrypt_port = free_tcp_port()
    decrypt = start_spiped(processes, OUR_SPIPED, "-d", tcp_address(decrypt_port),
                           tcp_address(redis_port), server_key, f"cli-d-{decrypt_port}")
    old_entry, new_entry = free_tcp_port(), free_tcp_port()
    start_spiped(processes, OUR_SPIPED, "-e", tcp_address(old_entry), tcp_address(decrypt_port),
                 old_copy, f"cli-e-old-{old_entry}")
    start_spiped(processes, OUR_SPIPED, "-e", tcp_address(new_entry), tcp_address(decrypt_port),
                 new_copy, f"cli-e-new-{new_entry}")
    assert redis_ping_through(old_entry)
    assert not redis_ping_through(new_entry)

    with RespClient(old_entry) as open_connection:
        client_id = open_connection.command("CLIENT", "ID")
        replace_key(server_key, new_bytes)
        ok, log = sighup_and_wait(decrypt.popen.pid, decrypt.log_text, decrypt.is_running)
        assert ok, log
        decrypt.assert_running()
        assert redis_ping_through(new_entry)
        assert not redis_ping_through(old_entry)
        assert open_connection.command("PING") == "PONG"

        # A key file that cannot be read leaves the key in use as it was.
        server_key.unlink()
        ok, log = sighup_and_wait(decrypt.popen.pid, decrypt.log_text, decrypt.is_running)
        assert not ok and str(server_key) in log, log
        decrypt.assert_running()
        assert redis_ping_through(new_entry)
        assert not redis_ping_through(old_entry)
        assert open_connection.command("CLIENT", "ID") == client_id


# --- routing by key ------------------------------------------------------------------------

def test_routing_by_key_sends_each_key_to_its_own_target(processes, tmp_path, line_servers):
    first, second = line_servers("target1", "target2")
    keys = {name: write_key(tmp_path / f"{name}.key") for name in ("a", "b", "stranger")}
    decrypt_port = free_tcp_port()
    ConfigSpiped(processes, tmp_path, unique_name("routes-d"), config_text(pipe_section(
        "cluster", mode="decrypt", source=tcp_address(decrypt_port),
        route=[f"{keys['a']} {first.address}", f"{keys['b']} {second.address}"],
        timeout=SPIPED_TIMEOUT_SECONDS)), [decrypt_port])
    entries = {name: free_tcp_port() for name in keys}
    ConfigSpiped(processes, tmp_path, unique_name("routes-e"), config_text(*(pipe_section(
        f"holder-{name}", mode="encrypt", source=tcp_address(entries[name]),
        target=tcp_address(decrypt_port), key=str(keys[name])) for name in keys)),
        list(entries.values()))

    rounds = 5
    open_a, open_b = LineClient(entries["a"]), LineClient(entries["b"])
    try:
        for _ in range(rounds):
            assert tag_of_fresh_connection(entries["a"]) == "target1"
            assert tag_of_fresh_connection(entries["b"]) == "target2"
            assert refused_through(entries["stranger"])
            assert open_a.ask("a") == "target1" and open_b.ask("b") == "target2"
    finally:
        open_a.close()
        open_b.close()
    # Every connection is accounted for: the stranger reached neither target.
    assert first.accepted_count == rounds + 1
    assert second.accepted_count == rounds + 1
