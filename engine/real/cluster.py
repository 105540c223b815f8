"""A throwaway Redis Cluster on loopback ports: for tests, benchmarks and ``flashsim cluster up``.

:class:`LocalCluster` starts ``nodes`` ``redis-server --cluster-enabled yes``
processes on free 127.0.0.1 ports in a temporary directory (no persistence),
gives node ``i`` exactly the slots :func:`engine.slots.even_slot_ranges` gives
simulated node ``i`` (``CLUSTER ADDSLOTSRANGE``), introduces them to each other
(``CLUSTER MEET``), waits for ``cluster_state:ok`` on every node, and on
:meth:`stop` shuts them down and removes the directory. ``nodes=1`` without
``cluster=True`` starts a plain single node.

With ``replicas=N`` each master gets ``N`` replicas (``CLUSTER REPLICATE``)
and :meth:`start` returns only once every replica is in sync
(``master_link_status:up`` and its offset equal to its master's).
``node_timeout`` is ``cluster-node-timeout`` in seconds (how long a master may be
unreachable before its replica is promoted). Nodes run with
``--enable-debug-command local`` so the fault injector may send ``DEBUG SLEEP``
(:mod:`engine.real.faults`).

``state.json`` in the directory records ports, pids and roles, so ``flashsim
cluster down`` (another process) can find and stop a detached cluster, and a
run's fault injector can find the process behind a master.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from engine.real.target import TargetError
from engine.slots import even_slot_ranges

INSTALL_HINT = "install it with: apt-get install redis-server"
STATE_FILE = "state.json"
# cluster-node-timeout, seconds, of the clusters flashsim starts (redis.conf default: 15 s; the 5 s used
# before replicas existed is kept: without replicas no failover depends on it)
DEFAULT_NODE_TIMEOUT = 5.0


def default_state_dir() -> Path:
    """Where ``flashsim cluster up`` keeps its detached cluster (one per user)."""
    return Path(tempfile.gettempdir()) / f"flashsim-cluster-{os.getuid()}"


def free_port() -> int:
    """A loopback port that is free now, and whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise TargetError("no free loopback port pair (port, port+10000) found")


class LocalCluster:
    """``nodes`` local Redis masters with slots split as ``redis-cli --cluster create`` does.

    With ``replicas`` each master also gets that many replicas; process ``i`` of
    :attr:`ports` is master ``i`` for ``i < nodes``, then the replicas, master by
    master. :attr:`roles` and :attr:`replica_of` record the roles they were
    started with (after a failover the servers know better: ask ``CLUSTER NODES``).
    """

    def __init__(self, nodes: int = 3, directory: str | Path | None = None, cluster: bool | None = None,
                 redis_server: str = "redis-server", detach: bool = False, replicas: int = 0,
                 node_timeout: float = DEFAULT_NODE_TIMEOUT):
        if nodes < 1:
            raise TargetError(f"a cluster needs at least one node (got {nodes})")
        if replicas < 0:
            raise TargetError(f"replicas must be >= 0 (got {replicas})")
        if not node_timeout > 0:
            raise TargetError(f"node timeout must be > 0 s (got {node_timeout})")
        self.nodes = nodes
        self.cluster = (nodes > 1 or replicas > 0) if cluster is None else cluster
        if replicas and not self.cluster:
            raise TargetError("replicas need a cluster (cluster=True)")
        self.replicas = replicas
        self.node_timeout = node_timeout
        self.redis_server = redis_server
        self.detach = detach
        self._given_dir = Path(directory) if directory else None
        self.directory: Path | None = None
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen] = []
        self.pids: list[int] = []
        self.binary: str | None = None

    @property
    def url(self) -> str:
        """The entry point (node 0); a cluster-aware client discovers the rest."""
        if not self.ports:
            raise TargetError("the local cluster is not running")
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @property
    def roles(self) -> list[str]:
        """The role each process was started with ("master" or "replica"), in :attr:`ports` order."""
        return ["master"] * self.nodes + ["replica"] * (self.nodes * self.replicas)

    @property
    def replica_of(self) -> list[int | None]:
        """The port of the master each process was started to replicate (None: a master)."""
        if not self.ports:
            return []
        return [None] * self.nodes + [self.ports[i // max(1, self.replicas)]
                                      for i in range(self.nodes * self.replicas)]

    # ------------------------------------------------------------ life cycle
    def start(self, timeout: float = 20.0) -> LocalCluster:
        binary = shutil.which(self.redis_server)
        if binary is None:
            raise TargetError(f"{self.redis_server} not found; {INSTALL_HINT}")
        self.binary = binary
        if self._given_dir:
            self._given_dir.mkdir(parents=True, exist_ok=True)
            if (self._given_dir / STATE_FILE).exists():
                raise TargetError(f"{self._given_dir} already holds a running cluster; stop it first")
            self.directory = self._given_dir
        else:
            self.directory = Path(tempfile.mkdtemp(prefix="flashsim-cluster-"))
        try:
            for _ in range(self.nodes * (1 + self.replicas)):
                self._spawn_answering(binary, timeout)
            clients = [self._client(port) for port in self.ports]
            if self.cluster:
                self._form(clients, timeout)
                if self.replicas:
                    self._replicate(clients, timeout)
            for client in clients:
                client.close()
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _args(self, binary: str, port: int) -> list[str]:
        assert self.directory is not None
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.directory), "--logfile", f"redis-{port}.log", "--daemonize", "no",
                "--enable-debug-command", "local",  # DEBUG SLEEP for redis_pause faults, loopback clients only
                "--repl-diskless-sync-delay", "0",  # a replica syncs at once (default: waits 5 s for others)
                # Redis 7 hides a replica from CLUSTER SLOTS until its offset moves, which an idle master
                # does only by pinging its replicas (default every 10 s): ping every second
                "--repl-ping-replica-period", "1"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                     "--cluster-node-timeout", str(max(1, round(self.node_timeout * 1000))),
                     # a dead master's slots fail, the others keep serving (Redis' default, yes, stops every
                     # node until the failover; the simulator's crash stops only the crashed node)
                     "--cluster-require-full-coverage", "no"]
        return args

    def _spawn_answering(self, binary: str, timeout: float, attempts: int = 5) -> None:
        """Start one more node on a free port and wait for its PING; another port if it could not bind.

        A port free when probed may be taken before redis-server binds it (another process's
        outgoing connection, on a busy machine): the node then exits at once, and is started
        again elsewhere.
        """
        for attempt in range(attempts):
            self._spawn(binary, free_port())
            proc, client = self.processes[-1], self._client(self.ports[-1])
            deadline = time.monotonic() + timeout
            try:
                while proc.poll() is None and time.monotonic() < deadline:
                    try:
                        if _ping(client):
                            return
                    except redis.RedisError:
                        pass
                    time.sleep(0.01)
            finally:
                client.close()
            if proc.poll() is None:
                raise TargetError(f"timed out after {timeout:g} s waiting for redis-server on port {self.ports[-1]}")
            if attempt == attempts - 1:
                raise TargetError(f"redis-server exited with status {proc.returncode} "
                                  f"(see the logs in {self.directory})")
            self.processes.pop()
            self.pids.pop()
            self.ports.pop()

    def _spawn(self, binary: str, port: int) -> None:
        proc = subprocess.Popen(self._args(binary, port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=self.detach)
        self.processes.append(proc)
        self.pids.append(proc.pid)
        self.ports.append(port)

    def _form(self, clients: list[redis.Redis], timeout: float) -> None:
        for client, (first, last) in zip(clients, even_slot_ranges(self.nodes)):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for i, client in enumerate(clients):  # every pair meets: no waiting for gossip to spread the news
            for port in self.ports[i + 1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        total = str(len(self.ports))

        def formed() -> bool:
            for client in clients:
                fields = _cluster_info(client)
                if fields.get("cluster_state") != "ok" or fields.get("cluster_known_nodes") != total:
                    return False
            return True

        try:
            self._wait(formed, timeout, "cluster_state:ok on every node")
        except TargetError as err:  # say what each node saw: a port taken under us, a node that never met
            seen = []
            for port, client in zip(self.ports, clients):
                try:
                    fields = _cluster_info(client)
                    seen.append(f"{port}: {fields.get('cluster_state')}, knows {fields.get('cluster_known_nodes')}")
                except redis.RedisError as problem:
                    seen.append(f"{port}: {problem.__class__.__name__}")
            raise TargetError(f"{err} ({'; '.join(seen)})") from None

    def _replicate(self, clients: list[redis.Redis], timeout: float) -> None:
        """Make each replica process replicate its master; wait until every one is in sync."""
        ids = [_text(client.execute_command("CLUSTER", "MYID")) for client in clients]
        masters = {port: index for index, port in enumerate(self.ports[:self.nodes])}
        pairs = [(index, masters[port]) for index, port in enumerate(self.replica_of) if port is not None]

        def knows_masters() -> bool:
            return all(ids[master] in _text(clients[replica].execute_command("CLUSTER", "NODES"))
                       for replica, master in pairs)

        self._wait(knows_masters, timeout, "the replicas to learn their masters")
        for replica, master in pairs:
            clients[replica].execute_command("CLUSTER", "REPLICATE", ids[master])

        def in_sync() -> bool:
            for replica, master in pairs:
                mine, theirs = clients[replica].info("replication"), clients[master].info("replication")
                if mine.get("role") != "slave" or mine.get("master_link_status") != "up":
                    return False
                if mine.get("slave_repl_offset") != theirs.get("master_repl_offset"):
                    return False
            for client in clients:  # every node lists every replica (what discover() and the injector read)
                if _cluster_info(client).get("cluster_state") != "ok":
                    return False
                rows = client.execute_command("CLUSTER", "SLOTS")
                if len(rows) < self.nodes or any(len(row) != 3 + self.replicas for row in rows):
                    return False
            return True

        self._wait(in_sync, timeout, "every replica in sync with its master")

    def _wait(self, ready: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise TargetError(f"redis-server exited with status {proc.returncode} "
                                      f"(see the logs in {self.directory})")
            try:
                if ready():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise TargetError(f"timed out after {timeout:g} s waiting for {what}")

    # ------------------------------------------------------------ faults
    def pid_of(self, port: int) -> int:
        """The pid of the redis-server this cluster runs on ``port`` (TargetError when it is not ours)."""
        if port not in self.ports:
            raise TargetError(f"127.0.0.1:{port} is not a node of the local cluster in {self.directory}")
        return self.pids[self.ports.index(port)]

    def kill(self, port: int) -> int:
        """kill -9 the node on ``port`` (only while it still is our redis-server); returns its pid."""
        pid = self.pid_of(port)
        if not (_alive(pid) and _is_redis(pid, port)):
            raise TargetError(f"the node on port {port} (pid {pid}) is not running")
        os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        for proc in self.processes:
            if proc.pid == pid:
                proc.wait(5)  # reap our child (a detached cluster's node is reaped by init)
        return pid

    def restart(self, port: int) -> int:
        """Start the node on ``port`` again with its cluster config (it rejoins; a killed master as a replica)."""
        pid = self.pid_of(port)
        if _alive(pid) and _is_redis(pid, port):
            raise TargetError(f"the node on port {port} is still running (pid {pid})")
        binary = self.binary or shutil.which(self.redis_server)
        if binary is None:
            raise TargetError(f"{self.redis_server} not found; {INSTALL_HINT}")
        proc = subprocess.Popen(self._args(binary, port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=self.detach)
        self.processes.append(proc)
        self.pids[self.ports.index(port)] = proc.pid
        self._write_state()
        return proc.pid

    def stop(self) -> None:
        """Stop every node this object (or the recorded state) started; remove the directory.

        SIGTERM is Redis' graceful shutdown (nothing to save: persistence is off).
        A recorded pid is signalled only while it still is a redis-server on its port.
        """
        for pid, port in zip(self.pids, self.ports):
            if _alive(pid) and _is_redis(pid, port):
                os.kill(pid, signal.SIGTERM)
        for pid in self.pids:
            _wait_gone(pid)
        for proc in self.processes:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.directory is not None and self.directory.exists():
            shutil.rmtree(self.directory, ignore_errors=True)
        self.processes, self.pids, self.ports = [], [], []

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------ detached state
    def _write_state(self) -> None:
        if self.directory is None or not self.directory.exists():
            return
        state = {"nodes": self.nodes, "cluster": self.cluster, "ports": self.ports, "pids": self.pids,
                 "replicas": self.replicas, "node_timeout": self.node_timeout, "roles": self.roles,
                 "replica_of": self.replica_of}
        (self.directory / STATE_FILE).write_text(json.dumps(state) + "\n", encoding="utf-8")

    @classmethod
    def attach(cls, directory: str | Path) -> LocalCluster:
        """The cluster recorded in ``directory`` by a detached :meth:`start` (to stop it, or inject faults)."""
        path = Path(directory) / STATE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TargetError(f"no local cluster recorded in {directory}") from None
        found = cls(state["nodes"], directory, state["cluster"], detach=True, replicas=state.get("replicas", 0),
                    node_timeout=state.get("node_timeout", DEFAULT_NODE_TIMEOUT))
        found.directory = Path(directory)
        found.ports, found.pids = list(state["ports"]), list(state["pids"])
        return found

    def serves(self, url: str) -> bool:
        """True when ``url`` points at one of this cluster's nodes (loopback, one of our ports)."""
        parts = urlsplit(url)
        return parts.scheme == "redis" and parts.hostname in ("127.0.0.1", "localhost") and \
            (parts.port or 6379) in self.ports

    @staticmethod
    def _client(port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _cluster_info(client: redis.Redis) -> dict[str, str]:
    info = _text(client.execute_command("CLUSTER", "INFO"))
    return dict(line.split(":", 1) for line in info.split() if ":" in line)


def _ping(client: redis.Redis) -> bool:
    return bool(client.ping())


def _wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _is_redis(pid: int, port: int) -> bool:
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes()  # redis-server rewrites it: "redis-server 127.0.0.1:PORT"
    except OSError:
        return False
    return title.split(b" ")[0].endswith(b"redis-server") and f":{port}".encode() in title
