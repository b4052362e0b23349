"""Uploads and downloads per second with 1, 2 and 3 nodes behind HAProxy, and the time a ban takes to reach
every node, with Redis and without it (the database copy alone).

Nodes are real `medvault serve` processes on one PostgreSQL database (a fresh one per run), one Redis and one
blob folder (tests/cluster.py, the harness the tests use). One patient signs in once; then `--clients`
threads, each from its own loopback address (the flood jail allows 40 requests a second per address) with
its own kept-alive HTTPS connection through the balancer (HAProxy balances connections, so
they spread over the nodes), upload records of `--size-kib` for `--seconds`, then download them for as long.
Peer in the same run: nginx (one worker, same certificate, TLS 1.2/1.3) storing the same bodies by PUT
and serving them by GET, directly, to as many client threads: what TLS and HTTP alone cost here.

CPU is user+sys of every server process over the phase (nodes and their workers, HAProxy, Redis; for the
peer its worker; not PostgreSQL's, a shared system service) and of the client threads (this process), beside
wall time. On a machine with 2 cores more
nodes cannot add CPU: the figure to read is requests per CPU second as nodes are added. Ban reach: a
scanner's three probes on node 0, then node 1 polled every 5 ms until it refuses the address. Never
asserts on timing.

    .venv/bin/python bench/cluster.py                      # 1, 2, 3 nodes; 16 clients; 64 KiB; 5 s phases
    .venv/bin/python bench/cluster.py --nodes 1 2 --seconds 10
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import child_pids, machine_summary, proc_cpu, tool
from https_transfer import Nginx
from tests.cluster import Cluster

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "correct horse battery"  # noqa: S105 - the benchmark's own throw-away account


def _database() -> tuple[str, str]:
    name = f"medvault_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


def _drop(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):  # a process that just ended
            todo += child_pids(p)
    return out


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += proc_cpu(pid)
    return total


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _phase(clients: list[httpx.Client], seconds: float, step, servers: list[int]) -> tuple[int, float, float, float]:
    """Run `step(client, i)` in one thread per client for `seconds`; (requests, wall, server CPU, client CPU)."""
    counts = [0] * len(clients)
    stop = time.monotonic() + seconds
    pids = [p for s in servers for p in _tree(s)]

    errors: list[BaseException] = []

    def work(k: int) -> None:
        i = 0
        try:
            while time.monotonic() < stop:
                step(clients[k], i)
                counts[k] += 1
                i += 1
        except BaseException as exc:  # reported after the phase: a silent thread would flatter the figure
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(clients))]
    cpu0, me0, t0 = _cpu(pids), _self_cpu(), time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"a client failed: {errors[0]!r}")
    return sum(counts), time.monotonic() - t0, _cpu(pids) - cpu0, _self_cpu() - me0


def _line(name: str, n: int, wall: float, server_cpu: float, client_cpu: float) -> str:
    return (
        f"  {name:28} {n / wall:8.1f} req/s   wall {wall:5.1f} s   server CPU {server_cpu:6.2f} s "
        f"({n / max(server_cpu, 1e-9):6.1f} req per CPU s)   client CPU {client_cpu:5.2f} s"
    )


def _nodes_run(folder: Path, url: str, size: int, args, body: bytes) -> None:
    cluster = Cluster(folder, url, size).start()
    try:
        code = cluster.nodes[0].invite("benchpatient")
        with cluster.client() as c:
            c.post("/api/v1/invitations/accept", json={"code": code, "password": PASSWORD}).raise_for_status()
            login = c.post("/api/v1/login", json={"username": "benchpatient", "password": PASSWORD})
            login.raise_for_status()
            cookies, csrf = dict(c.cookies), login.json()["csrf_token"]
        clients = []
        for k in range(args.clients):  # one address each: the flood jail allows 40 requests/s per address
            client = cluster.client(source=f"127.0.9.{k + 1}")
            client.cookies.update(cookies)
            client.headers["X-CSRF-Token"] = csrf
            clients.append(client)
        servers = [n.proc.pid for n in cluster.nodes] + [cluster.balancer.proc.pid, cluster.redis.proc.pid]
        made: list[str] = []

        def up(client: httpx.Client, i: int) -> None:
            answer = client.post("/api/v1/records", files={"file": (f"r{i}.bin", body, "application/octet-stream")})
            if answer.status_code != 201:
                raise RuntimeError(f"upload answered {answer.status_code}")
            made.append(answer.json()["id"])

        n, wall, scpu, ccpu = _phase(clients, args.seconds, up, servers)
        print(_line(f"{size} node(s) upload", n, wall, scpu, ccpu))

        def down(client: httpx.Client, i: int) -> None:
            got = client.get(f"/api/v1/records/{made[i % len(made)]}/content")
            if got.status_code != 200 or len(got.content) != len(body):
                raise SystemExit(f"download failed: {got.status_code}")

        n, wall, scpu, ccpu = _phase(clients, args.seconds, down, servers)
        print(_line(f"{size} node(s) download", n, wall, scpu, ccpu))
        for client in clients:
            client.close()
        if size >= 2:
            print(f"  ban reaches node 1 (Redis):  {_ban_reach(cluster, 30):7.1f} ms (median of 5)")
    finally:
        cluster.stop()


def _ban_reach(cluster: Cluster, first_octet: int) -> float:
    times = []
    for k in range(5):
        source = f"127.0.{first_octet}.{k + 1}"
        with cluster.client(0, source) as prober:
            for path in ("/.env", "/wp-login.php", "/.git/config"):
                prober.get(path)
        start = time.monotonic()
        while time.monotonic() - start < 10:
            try:
                with cluster.client(1, source) as c:
                    if c.get("/login").status_code == 403:
                        break
            except httpx.TransportError:
                break
            time.sleep(0.005)
        times.append((time.monotonic() - start) * 1000)
    return sorted(times)[2]


def _without_redis(folder: Path, url: str) -> None:
    cluster = Cluster(folder, url, 2)
    for node in cluster.nodes:
        node.env["MEDVAULT_REDIS_URL"] = ""
    cluster.start()
    try:
        print(f"  ban reaches node 1 (database copy only): {_ban_reach(cluster, 31):7.1f} ms (median of 5)")
    finally:
        cluster.stop()


def _peer(folder: Path, cert: Path, key: Path, args, body: bytes) -> None:
    payload = folder / "payload.bin"
    payload.write_bytes(body)
    with Nginx(folder / "nginx", cert, key, payload) as ngx:
        verify = httpx.create_ssl_context(verify=str(cert))
        clients = [httpx.Client(base_url=ngx.base, verify=verify, timeout=60) for _ in range(args.clients)]
        workers = ngx.workers()

        def put(client: httpx.Client, i: int) -> None:
            client.put(f"/up/{id(client)}-{i}.bin", content=body).raise_for_status()

        def get(client: httpx.Client, i: int) -> None:
            if len(client.get("/file.bin").content) != len(body):
                raise SystemExit("nginx download failed")

        n, wall, scpu, ccpu = _phase(clients, args.seconds, put, workers)
        print(_line("nginx PUT (peer)", n, wall, scpu, ccpu))
        n, wall, scpu, ccpu = _phase(clients, args.seconds, get, workers)
        print(_line("nginx GET (peer)", n, wall, scpu, ccpu))
        for client in clients:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--size-kib", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    missing = [t for t in ("haproxy", "redis-server", "nginx") if tool(t) is None]
    if missing:
        raise SystemExit(f"missing: {' '.join(missing)} (make test-tools)")
    print(machine_summary())
    print(f"{args.clients} client threads, records of {args.size_kib} KiB, {args.seconds:.0f} s per phase")
    body = os.urandom(args.size_kib * 1024)
    with tempfile.TemporaryDirectory(prefix="mv-bench-cluster-") as tmp:
        root = Path(tmp)
        for size in args.nodes:
            name, url = _database()
            try:
                _nodes_run(root / f"n{size}", url, size, args, body)
            finally:
                _drop(name)
        name, url = _database()
        try:
            _without_redis(root / "noredis", url)
        finally:
            _drop(name)
        cert = root / f"n{args.nodes[0]}" / "node0" / "tls"
        _peer(root, cert / "cert.pem", cert / "key.pem", args, body)


if __name__ == "__main__":
    main()
