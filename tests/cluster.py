"""Several MedVault nodes behind a real load balancer, for the tests and the benchmarks.

Each node is its own `medvault serve` with its own data folder (logs, guard status), all on one PostgreSQL
database, one Redis (password required) and one blob store, with the same server secret and TLS certificate
copied into each folder before `medvault init` (the operator's routine, README "Several nodes"). HAProxy in
TCP mode passes TLS through untouched and prepends a PROXY protocol v1 line from its own source address, the
nodes' only trusted proxy. Besides the balanced front end there is one front end per node, so a test can
reach a chosen node through the proxy as well.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.support import Server, free_port, require_tool

PROXY_SOURCE = "127.0.0.92"


class Redis:
    """A private redis-server on a free port, requiring a password, keeping nothing on disk."""

    def __init__(self, folder: Path):
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.folder = folder
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> Redis:
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", self.password, "--save", ""]
        self.proc = subprocess.Popen(
            [require_tool("redis-server"), *args, "--appendonly", "no", "--dir", str(self.folder)],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Balancer:
    """HAProxy: `port` balances over every node; `node_ports[i]` reaches node i only."""

    def __init__(self, folder: Path, nodes: list[Server]):
        self.folder = folder
        self.port = free_port()
        self.node_ports = [free_port() for _ in nodes]
        self.nodes = nodes
        self.proc: subprocess.Popen | None = None

    def _config(self) -> str:
        def server(i: int, node: Server, check: bool) -> str:
            health = " check check-send-proxy inter 300ms fall 1 rise 2" if check else ""
            return f"    server n{i} 127.0.0.1:{node.https_port} send-proxy source {PROXY_SOURCE}{health}\n"

        text = (
            "global\n    maxconn 2000\n"
            "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 120s\n    timeout server 120s\n"
            f"frontend balanced\n    bind 127.0.0.1:{self.port}\n    default_backend nodes\n"
            "backend nodes\n    balance roundrobin\n" + "".join(server(i, n, True) for i, n in enumerate(self.nodes))
        )
        for i, (port, node) in enumerate(zip(self.node_ports, self.nodes, strict=True)):
            text += f"frontend only{i}\n    bind 127.0.0.1:{port}\n    default_backend only{i}\n"
            text += f"backend only{i}\n" + server(i, node, False)
        return text

    def start(self) -> Balancer:
        config = self.folder / "haproxy.cfg"
        config.write_text(self._config())
        self.proc = subprocess.Popen(
            [require_tool("haproxy"), "-db", "-f", str(config)],
            stdout=(self.folder / "haproxy.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(self.port, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


class Cluster:
    """`size` nodes on PostgreSQL (`database_url`), Redis and one blob store behind HAProxy: a shared blob
    folder, or the bucket `blob_env` names (`MEDVAULT_BLOB_URL` and its keys)."""

    def __init__(self, folder: Path, database_url: str, size: int = 2, blob_env: dict[str, str] | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.redis = Redis(folder)
        blobs = folder / "blobs"
        blobs.mkdir()
        self.nodes: list[Server] = []
        for i in range(size):
            data = folder / f"node{i}"
            data.mkdir()
            if blob_env is None:
                (data / "blobs").symlink_to(blobs)  # one store for all (a shared volume)
            env = {
                **(blob_env or {}),
                "MEDVAULT_DATABASE_URL": database_url,
                "MEDVAULT_REDIS_URL": self.redis.url,
                "MEDVAULT_TRUSTED_PROXIES": f"{PROXY_SOURCE}/32",
                "MEDVAULT_PROXY_PROTOCOL": "true",
            }
            self.nodes.append(Server(data, env=env))
        self.balancer = Balancer(folder, self.nodes)

    def start(self) -> Cluster:
        self.redis.start()
        first = self.nodes[0]
        first.init()
        for node in self.nodes[1:]:  # the same secret and certificate on every node, copied before init
            shutil.copy2(first.data_dir / "server.secret", node.data_dir / "server.secret")
            shutil.copytree(first.data_dir / "tls", node.data_dir / "tls")
            node.init()
        for node in self.nodes:
            node.start()
        self.balancer.start()
        return self

    def stop(self) -> None:
        self.balancer.stop()
        for node in self.nodes:
            node.stop()
        self.redis.stop()

    def client(self, node: int | None = None, source: str | None = None, **kwargs) -> httpx.Client:
        """HTTPS through the balancer (to one node when `node` is given), verified against the shared certificate."""
        port = self.balancer.port if node is None else self.balancer.node_ports[node]
        transport = httpx.HTTPTransport(local_address=source, verify=self.nodes[0].ssl_context(), retries=0)
        return httpx.Client(base_url=f"https://127.0.0.1:{port}", transport=transport, timeout=60, **kwargs)

    def kill(self, node: int) -> None:
        """kill -9 of the node's whole process group (the server and its workers), as a crash would."""
        proc = self.nodes[node].proc
        assert proc is not None
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{proc.args[0]} did not listen on {port} within {timeout} s")
