"""Real Redis topologies on loopback for the scale tests and the ``scale`` benchmark.

* :class:`LocalCluster`: N masters + N×R replicas, each a ``redis-server --cluster-enabled yes``
  (Frontdesk's :class:`~frontdesk.state.EmbeddedRedis` with cluster flags), joined by
  ``redis-cli --cluster create … --cluster-replicas R --cluster-yes`` and waited for until every
  node reports ``cluster_state:ok``.
* :class:`LocalSentinelGroup`: one master, one replica (``--replicaof``) and three
  ``redis-server --sentinel`` processes monitoring it with a quorum of 2, waited for until every
  Sentinel sees the replica and the two other Sentinels (so a failover can be authorised).

Nothing here is a fake: these are the processes an operator runs, with short timeouts
(``cluster-node-timeout``, ``down-after-milliseconds``) so that failovers take seconds.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from frontdesk.state import EmbeddedRedis, find_redis_server

CLUSTER_SLOTS = 16384


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def find_redis_cli() -> str:
    """``redis-cli`` next to the ``redis-server`` in use, else the one on PATH."""
    beside = Path(find_redis_server()).with_name("redis-cli")
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-cli")
    if found is None:
        raise RuntimeError("redis-cli is needed to create a Redis Cluster (Debian: redis-tools)")
    return found


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except Exception as exc:  # a node still starting or failing over
            last = exc
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")


@dataclass(frozen=True)
class ClusterNodeInfo:
    """One line of ``CLUSTER NODES``."""

    node_id: str
    port: int
    role: str
    """``master`` or ``slave`` (Redis's word), ``fail`` flags kept in ``flags``."""
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    def owns(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)


class LocalCluster:
    """A Redis Cluster on loopback: ``masters`` shards with ``replicas`` replicas each."""

    def __init__(self, *, masters: int = 3, replicas: int = 1, node_timeout_ms: int = 1000) -> None:
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[EmbeddedRedis] = []

    @property
    def seed_url(self) -> str:
        return self.nodes[0].url

    def start(self) -> LocalCluster:
        for _ in range(self.masters * (1 + self.replicas)):
            # An explicit bus port: the default (port + 10000) fails for ports above 55535.
            node = EmbeddedRedis(
                appendonly=False,
                extra_args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    str(self.node_timeout_ms),
                    "--cluster-port",
                    str(free_port()),
                    # A replica whose master just died must not refuse to take over.
                    "--repl-diskless-sync-delay",
                    "0",
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            )
            self.nodes.append(node.start())
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            [
                find_redis_cli(),
                "--cluster",
                "create",
                *addresses,
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            self.stop()
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
        self.wait_healthy()
        self.wait_replicas_synced()
        return self

    def client(self, node: EmbeddedRedis) -> Redis:
        return Redis(host="127.0.0.1", port=node.port, socket_timeout=5)

    def node_by_port(self, port: int) -> EmbeddedRedis:
        return next(node for node in self.nodes if node.port == port)

    def live_nodes(self) -> list[EmbeddedRedis]:
        return [node for node in self.nodes if node.running]

    def topology(self) -> list[ClusterNodeInfo]:
        """``CLUSTER NODES`` as seen by the first live node.

        A node just restarted may still hold an old view of itself (a demoted master believes
        it is master until the others tell it otherwise): after a failover, read the topology
        once :meth:`wait_rejoined_as_replica` has seen every node agree.
        """
        return self.view_of(self.live_nodes()[0])

    def view_of(self, node: EmbeddedRedis) -> list[ClusterNodeInfo]:
        """``CLUSTER NODES`` as ``node`` sees it."""
        with self.client(node) as admin:
            text = admin.execute_command("CLUSTER", "NODES")
        if isinstance(text, bytes):
            text = text.decode()
        nodes: list[ClusterNodeInfo] = []
        for line in str(text).splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            flags = frozenset(parts[2].split(","))
            slots: list[tuple[int, int]] = []
            for spec in parts[8:]:
                if spec.startswith("["):
                    continue  # a slot being migrated or imported
                low, _, high = spec.partition("-")
                slots.append((int(low), int(high or low)))
            nodes.append(
                ClusterNodeInfo(
                    node_id=parts[0],
                    port=int(parts[1].split("@")[0].rsplit(":", 1)[1]),
                    role="master" if "master" in flags else "slave",
                    flags=flags,
                    master_id=None if parts[3] == "-" else parts[3],
                    slots=tuple(slots),
                )
            )
        return nodes

    def master_of_slot(self, slot: int) -> ClusterNodeInfo:
        for node in self.topology():
            if node.role == "master" and "fail" not in node.flags and node.owns(slot):
                return node
        raise RuntimeError(f"no live master owns slot {slot}")

    def keyslot(self, key: str) -> int:
        with self.client(self.live_nodes()[0]) as admin:
            return int(admin.execute_command("CLUSTER", "KEYSLOT", key))

    def migrate_slot(self, slot: int, target_port: int, *, ask_window: float = 0.2) -> int:
        """Move ``slot`` (and its keys) to the master on ``target_port``, as resharding does.

        ``CLUSTER SETSLOT … IMPORTING``/``MIGRATING``, ``MIGRATE … KEYS`` in batches, then
        ``ask_window`` seconds during which the source answers ``ASK`` for the moved keys, then
        ``SETSLOT … NODE`` on every master (clients with the old map get ``MOVED``). Returns the
        number of keys moved.
        """
        topology = self.topology()
        source = self.master_of_slot(slot)
        target = next(n for n in topology if n.port == target_port and n.role == "master")
        if source.node_id == target.node_id:
            return 0
        src = self.client(self.node_by_port(source.port))
        dst = self.client(self.node_by_port(target.port))
        moved = 0
        try:
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
            while True:
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
                if not keys:
                    break
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
                moved += len(keys)
            time.sleep(ask_window)
            for node in [target, source] + [
                n for n in topology if n.role == "master" and n not in (source, target)
            ]:
                if "fail" in node.flags:
                    continue
                with self.client(self.node_by_port(node.port)) as admin:
                    admin.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        finally:
            src.close()
            dst.close()
        return moved

    def error_counts(self) -> dict[str, int]:
        """``INFO errorstats`` summed over the live nodes: MOVED, ASK, TRYAGAIN, CROSSSLOT…"""
        totals: dict[str, int] = {}
        for node in self.live_nodes():
            with self.client(node) as admin:
                for name, value in admin.info("errorstats").items():
                    kind = str(name).removeprefix("errorstat_")
                    count = int(value["count"]) if isinstance(value, dict) else 0
                    totals[kind] = totals.get(kind, 0) + count
        return totals

    def wait_promoted(self, port: int, timeout: float = 30.0) -> None:
        """Wait until the node on ``port`` is a master serving slots, and the cluster is ok."""

        def promoted() -> bool:
            return any(n.port == port and n.role == "master" and n.slots for n in self.topology())

        _wait(promoted, timeout, f"the replica on port {port} to be promoted")
        self.wait_healthy(timeout)

    def wait_replicas_synced(self, timeout: float = 60.0) -> None:
        """Every replica's link to its master is up (so ``WAIT 1`` can be answered)."""

        def synced() -> bool:
            for node in self.live_nodes():
                with self.client(node) as admin:
                    info = admin.info("replication")
                    if info.get("role") == "slave" and info.get("master_link_status") != "up":
                        return False
            return True

        _wait(synced, timeout, "every replica to be in sync")

    def wait_rejoined_as_replica(self, port: int, master_port: int, timeout: float = 60.0) -> None:
        """Wait until the whole cluster agrees the node on ``port`` is a replica of ``master_port``.

        Every live node (the restarted one included) must list it as a healthy ``slave`` of that
        master, list that master as the owner of slots, say ``cluster_state:ok`` with every slot
        served, and the replica's link must be up: only then is the failover over everywhere.
        """

        def agreed() -> bool:
            for node in self.live_nodes():
                view = {info.port: info for info in self.view_of(node)}
                replica, master = view.get(port), view.get(master_port)
                if replica is None or master is None:
                    return False
                if replica.role != "slave" or replica.master_id != master.node_id:
                    return False
                if {"fail", "fail?"} & (replica.flags | master.flags):
                    return False
                if master.role != "master" or not master.slots:
                    return False
                with self.client(node) as admin:
                    info = admin.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if (
                    "cluster_state:ok" not in text
                    or f"cluster_slots_ok:{CLUSTER_SLOTS}" not in text
                ):
                    return False
            with self.client(self.node_by_port(port)) as restarted:
                link = restarted.info("replication").get("master_link_status")
            return bool(link == "up")

        _wait(agreed, timeout, f"every node to see port {port} as a replica of {master_port}")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Every live node says ``cluster_state:ok`` and agrees every slot has a master."""

        def healthy() -> bool:
            for node in self.live_nodes():
                with self.client(node) as admin:
                    info = admin.execute_command("CLUSTER", "INFO")
                    text = info.decode() if isinstance(info, bytes) else str(info)
                    if "cluster_state:ok" not in text:
                        return False
                    if f"cluster_slots_ok:{CLUSTER_SLOTS}" not in text:
                        return False
            return True

        _wait(healthy, timeout, "cluster_state:ok on every node")

    def stop(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        self.nodes = []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalSentinelGroup:
    """A master, a replica and three Sentinels (quorum 2) on loopback."""

    def __init__(
        self,
        *,
        service: str = "frontdesk-master",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
        sentinels: int = 3,
    ) -> None:
        self.service = service
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.sentinel_count = sentinels
        self.master = EmbeddedRedis(
            appendonly=False, extra_args=["--repl-diskless-sync-delay", "0"]
        )
        self.replica: EmbeddedRedis | None = None
        self.sentinel_ports: list[int] = []
        self._sentinels: list[subprocess.Popen[bytes]] = []
        self._dir: Path | None = None

    @property
    def sentinel_addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def start(self) -> LocalSentinelGroup:
        self._dir = Path(tempfile.mkdtemp(prefix="frontdesk-sentinels-"))
        self.master.start()
        self.replica = EmbeddedRedis(
            appendonly=False,
            extra_args=["--replicaof", "127.0.0.1", str(self.master.port)],
        ).start()
        binary = find_redis_server()
        quorum = self.sentinel_count // 2 + 1
        for index in range(self.sentinel_count):
            port = free_port()
            conf = self._dir / f"sentinel-{index}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self._dir}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {self.master.port} {quorum}\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            process = subprocess.Popen(
                [binary, str(conf), "--sentinel"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._sentinels.append(process)
            self.sentinel_ports.append(port)
        self.wait_ready()
        return self

    def sentinel_client(self, port: int) -> Redis:
        return Redis(host="127.0.0.1", port=port, socket_timeout=2)

    def master_port(self) -> int:
        """The master's port as the Sentinels report it now."""
        for port in self.sentinel_ports:
            with contextlib.suppress(Exception), self.sentinel_client(port) as sentinel:
                address = sentinel.execute_command(
                    "SENTINEL", "get-master-addr-by-name", self.service
                )
                if address:
                    return int(address[1])
        raise RuntimeError("no Sentinel answers")

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Every Sentinel knows the replica and the other Sentinels, and the replica is in sync."""

        def ready() -> bool:
            for port in self.sentinel_ports:
                with self.sentinel_client(port) as sentinel:
                    state = sentinel.sentinel_master(self.service)
                    if int(state["num-slaves"]) < 1:
                        return False
                    if int(state["num-other-sentinels"]) < self.sentinel_count - 1:
                        return False
            assert self.replica is not None
            with Redis(host="127.0.0.1", port=self.replica.port) as replica:
                info = replica.info("replication")
                return bool(info.get("master_link_status") == "up")

        _wait(ready, timeout, "Sentinels to see the replica and each other")

    def node_by_port(self, port: int) -> EmbeddedRedis:
        assert self.replica is not None
        return self.master if self.master.port == port else self.replica

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> int:
        """Wait until the Sentinels name another master than ``old_port``; returns its port."""
        found: list[int] = []

        def moved() -> bool:
            port = self.master_port()
            if port == old_port:
                return False
            with Redis(host="127.0.0.1", port=port) as node:
                if node.info("replication").get("role") != "master":
                    return False
            found.append(port)
            return True

        _wait(moved, timeout, f"a failover away from port {old_port}")
        return found[-1]

    def stop(self) -> None:
        for process in self._sentinels:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._sentinels:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._sentinels = []
        for node in (self.master, self.replica):
            if node is not None:
                with contextlib.suppress(Exception):
                    node.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> LocalSentinelGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
