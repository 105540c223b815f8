"""A throwaway Redis Cluster on loopback ports: for tests, benchmarks and ``flashsim cluster up``.

:class:`LocalCluster` starts ``nodes`` ``redis-server --cluster-enabled yes``
processes on free 127.0.0.1 ports in a temporary directory (no persistence),
gives node ``i`` exactly the slots :func:`engine.slots.even_slot_ranges` gives
simulated node ``i`` (``CLUSTER ADDSLOTSRANGE``), introduces them to each other
(``CLUSTER MEET``), waits for ``cluster_state:ok`` on every node, and on
:meth:`stop` shuts them down and removes the directory. ``nodes=1`` without
``cluster=True`` starts a plain single node.

``state.json`` in the directory records ports and pids, so ``flashsim cluster
down`` (another process) can find and stop a detached cluster.
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

import redis

from engine.real.target import TargetError
from engine.slots import even_slot_ranges

INSTALL_HINT = "install it with: apt-get install redis-server"
STATE_FILE = "state.json"


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
    """``nodes`` local Redis masters with slots split as ``redis-cli --cluster create`` does."""

    def __init__(self, nodes: int = 3, directory: str | Path | None = None, cluster: bool | None = None,
                 redis_server: str = "redis-server", detach: bool = False):
        if nodes < 1:
            raise TargetError(f"a cluster needs at least one node (got {nodes})")
        self.nodes = nodes
        self.cluster = nodes > 1 if cluster is None else cluster
        self.redis_server = redis_server
        self.detach = detach
        self._given_dir = Path(directory) if directory else None
        self.directory: Path | None = None
        self.ports: list[int] = []
        self.processes: list[subprocess.Popen] = []
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        """The entry point (node 0); a cluster-aware client discovers the rest."""
        if not self.ports:
            raise TargetError("the local cluster is not running")
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    # ------------------------------------------------------------ life cycle
    def start(self, timeout: float = 20.0) -> LocalCluster:
        binary = shutil.which(self.redis_server)
        if binary is None:
            raise TargetError(f"{self.redis_server} not found; {INSTALL_HINT}")
        if self._given_dir:
            self._given_dir.mkdir(parents=True, exist_ok=True)
            if (self._given_dir / STATE_FILE).exists():
                raise TargetError(f"{self._given_dir} already holds a running cluster; stop it first")
            self.directory = self._given_dir
        else:
            self.directory = Path(tempfile.mkdtemp(prefix="flashsim-cluster-"))
        try:
            for _ in range(self.nodes):
                self._spawn(binary, free_port())
            clients = [self._client(port) for port in self.ports]
            self._wait(lambda: all(_ping(c) for c in clients), timeout, "the nodes to answer PING")
            if self.cluster:
                self._form(clients, timeout)
            for client in clients:
                client.close()
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, binary: str, port: int) -> None:
        assert self.directory is not None
        args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", str(self.directory), "--logfile", f"redis-{port}.log", "--daemonize", "no"]
        if self.cluster:
            args += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                     "--cluster-node-timeout", "5000"]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=self.detach)
        self.processes.append(proc)
        self.pids.append(proc.pid)
        self.ports.append(port)

    def _form(self, clients: list[redis.Redis], timeout: float) -> None:
        for client, (first, last) in zip(clients, even_slot_ranges(self.nodes)):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for port in self.ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)

        def formed() -> bool:
            for client in clients:
                info = client.execute_command("CLUSTER", "INFO")
                if isinstance(info, bytes):
                    info = info.decode()
                fields = dict(line.split(":", 1) for line in str(info).split() if ":" in line)
                if fields.get("cluster_state") != "ok" or fields.get("cluster_known_nodes") != str(self.nodes):
                    return False
            return True

        self._wait(formed, timeout, "cluster_state:ok on every node")

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
        assert self.directory is not None
        state = {"nodes": self.nodes, "cluster": self.cluster, "ports": self.ports, "pids": self.pids}
        (self.directory / STATE_FILE).write_text(json.dumps(state) + "\n", encoding="utf-8")

    @classmethod
    def attach(cls, directory: str | Path) -> LocalCluster:
        """The cluster recorded in ``directory`` by a detached :meth:`start` (to stop it)."""
        path = Path(directory) / STATE_FILE
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TargetError(f"no local cluster recorded in {directory}") from None
        found = cls(state["nodes"], directory, state["cluster"])
        found.directory = Path(directory)
        found.ports, found.pids = list(state["ports"]), list(state["pids"])
        return found

    @staticmethod
    def _client(port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2)


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
