"""Two nodes behind HAProxy on one PostgreSQL database, one Redis and one blob store.

A session and a record made on one node work on the other; an attack through the balancer is banned on
every node, the ban reaching the other node within a second; guesses spread over the nodes count as one;
concurrent writes on both keep one audit chain; a node killed with kill -9 mid-upload leaves nothing
visible and the upload retried on the other node succeeds; a Redis outage degrades to per-node guarding.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.attackers import run_as, snat_group
from tests.cluster import Cluster
from tests.support import add_entry, cli, require_tool, upload

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_url):
    nodes = Cluster(tmp_path_factory.mktemp("cluster"), pg_url).start()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def patient(cluster):
    """A patient invited on node 0's command line, signed in through node 0."""
    code = cluster.nodes[0].invite("nodepatient")
    client = cluster.client(0, "127.0.0.10")
    assert client.post("/api/v1/invitations/accept", json={"code": code, "password": PASSWORD}).status_code == 201
    login = client.post("/api/v1/login", json={"username": "nodepatient", "password": PASSWORD})
    assert login.status_code == 200, login.text
    client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
    return client


def _on(cluster: Cluster, node: int, signed_in: httpx.Client, source: str = "127.0.0.10") -> httpx.Client:
    """A client to one node carrying another client's session cookie and CSRF token."""
    client = cluster.client(node, source)
    client.cookies.update(signed_in.cookies)
    client.headers["X-CSRF-Token"] = signed_in.headers["X-CSRF-Token"]
    return client


def _refused(cluster: Cluster, node: int | None, source: str) -> bool:
    try:
        with cluster.client(node, source) as c:
            return c.get("/login").status_code == 403
    except httpx.TransportError:
        return True


def test_a_session_and_a_record_made_on_one_node_work_on_the_other(cluster, patient):
    content = os.urandom(300_000)
    made = upload(patient, content, "ct.pdf", {"title": "CT head"})
    assert made.status_code == 201, made.text
    record = made.json()["id"]
    with _on(cluster, 1, patient) as other:
        got = other.get(f"/api/v1/records/{record}/content")
        assert got.status_code == 200 and got.content == content
        assert other.get("/api/v1/records").json()["items"][0]["id"] == record


def test_scanner_through_the_balancer_is_banned_on_every_node(cluster, patient, tmp_path):
    words = tmp_path / "dirs.txt"
    words.write_text("\n".join([".env", ".git/config", "wp-login.php", "phpmyadmin/", *map(str, range(40))]) + "\n")
    with snat_group(77) as gid:
        base = f"https://127.0.0.1:{cluster.balancer.port}"
        gobuster = [require_tool("gobuster"), "dir", "-k", "-q", "-t", "2", "--timeout", "3s", "-u", base]
        run_as(gid, [*gobuster, "-w", str(words)], timeout=60)
    assert all(_refused(cluster, node, "127.0.0.77") for node in (0, 1, None, None))
    with _on(cluster, 1, patient) as other:  # the patient, on another address, carries on
        assert other.get("/api/v1/records").status_code == 200


def test_a_ban_on_one_node_reaches_the_other_within_a_second(cluster):
    with cluster.client(0, "127.0.0.78") as prober:
        for path in ("/.env", "/wp-login.php", "/.git/config"):
            prober.get(path)
    banned_at = time.monotonic()
    while not _refused(cluster, 1, "127.0.0.78") and time.monotonic() - banned_at < 5:
        time.sleep(0.02)
    assert time.monotonic() - banned_at < 1.0  # the database copy alone would take up to 2 s


def test_guesses_spread_over_nodes_count_as_one(cluster):
    """Five free failures per account on all nodes together, not five per node."""
    code = cluster.nodes[1].invite("guessed")
    with cluster.client(1, "127.0.0.11") as c:
        assert c.post("/api/v1/invitations/accept", json={"code": code, "password": PASSWORD}).status_code == 201
    answers = []
    for attempt in range(8):
        with cluster.client(attempt % 2, "127.0.0.79") as c:
            answers.append(c.post("/api/v1/login", json={"username": "guessed", "password": f"wrong{attempt}"}))
    statuses = [a.status_code for a in answers]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429, statuses


def test_a_device_cookie_from_one_node_is_honoured_by_the_other(cluster):
    """Guesses from a clinic's address lock out unknown browsers there, on both nodes; the browser that signed
    in on node 0 before still signs in, on node 1, from that same address."""
    code = cluster.nodes[0].invite("clinicdesk")
    with cluster.client(0, "127.0.0.81") as desk:
        assert desk.post("/api/v1/invitations/accept", json={"code": code, "password": PASSWORD}).status_code == 201
        assert desk.post("/api/v1/login", json={"username": "clinicdesk", "password": PASSWORD}).status_code == 200
        device = dict(desk.cookies)
    for attempt in range(12):
        with cluster.client(attempt % 2, "127.0.0.81") as guesser:
            last = guesser.post("/api/v1/login", json={"username": f"user{attempt}", "password": "guess-guess-1"})
    assert last.status_code == 403
    with cluster.client(1, "127.0.0.81") as desk_again:
        desk_again.cookies.update({k: v for k, v in device.items() if k != "mv_session"})
        again = desk_again.post("/api/v1/login", json={"username": "clinicdesk", "password": PASSWORD})
        assert again.status_code == 200, again.text


def test_concurrent_writes_on_both_nodes_keep_one_audit_chain(cluster, patient, pg_url):
    """Requests on both nodes and three more writer processes append at once; the chain stays one chain."""
    record = upload(patient, b"%PDF-1.4 lab", "lab.pdf", {"title": "Lab"}).json()["id"]
    writer = (
        "import sys; from medvault.audit import AuditTrail; from medvault.db.engine import make_engine\n"
        "trail = AuditTrail(make_engine(sys.argv[1]))\n"
        "for _ in range(150): trail.append('view', None, sys.argv[2])"
    )
    procs = [subprocess.Popen([sys.executable, "-c", writer, pg_url, record]) for _ in range(3)]
    clients = [_on(cluster, node, patient) for node in (0, 1)]
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda c=c: statuses.extend(
                c.get(f"/api/v1/records/{record}/content").status_code for _ in range(15)
            )
        )
        for c in clients
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert set(statuses) == {200}
    verdict = cli(cluster.nodes[1].data_dir, "audit", "verify", env=cluster.nodes[1].env)
    assert "audit trail intact" in verdict.stdout


def test_concurrent_edits_on_both_nodes_lose_nothing_and_never_fork_a_version(cluster, patient):
    """Chart entries written at once on both nodes are all kept; two new versions of one record at once: one
    is made, the other is told it lost (409), and the record has one successor."""
    record = upload(patient, b"%PDF-1.4 op note", "op.pdf", {"title": "Operative note"}).json()["id"]
    clients = [_on(cluster, node, patient) for node in (0, 1)]
    made: list[str] = []
    start = threading.Barrier(4)

    def notes(client: httpx.Client, k: int) -> None:
        start.wait(timeout=30)
        for i in range(10):
            made.append(add_entry(client, "annotation", {"record": record, "text": f"note {k}-{i}"}))

    threads = [threading.Thread(target=notes, args=(c, k)) for k, c in enumerate(clients * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    listed = patient.post("/api/v1/charts/entries/list", json={"kinds": ["annotation"]}).json()["items"]
    assert len(made) == 40 and set(made) <= {e["id"] for e in listed}

    versions = threading.Barrier(2)
    answers: list[int] = []

    def new_version(client: httpx.Client) -> None:
        versions.wait(timeout=30)
        files = {"file": ("op-v2.pdf", b"%PDF-1.4 op note, corrected", "application/pdf")}
        answers.append(client.post(f"/api/v1/records/{record}/versions", files=files).status_code)

    threads = [threading.Thread(target=new_version, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(answers) == [201, 409], answers


def test_a_node_killed_mid_upload_loses_nothing_and_the_retry_succeeds(cluster, patient):
    killed_mid_upload(cluster, patient)


def killed_mid_upload(cluster: Cluster, patient: httpx.Client) -> tuple[bytes, str]:
    """Node 0 is killed (`kill -9` of its process group) 2 MiB into an 8 MiB upload: node 1 shows no trace of
    it, the retry there succeeds byte for byte, the balancer takes the dead node out; node 0 is restarted.
    The upload's content and the retried record's id."""
    before = {r["id"] for r in patient.get("/api/v1/records").json()["items"]}
    content = os.urandom(8 * 1024 * 1024)
    sent = threading.Event()

    def slow_body():
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="mri.pdf"\r\n'
        yield b"Content-Type: application/pdf\r\n\r\n"
        for offset in range(0, len(content), 256 * 1024):
            if offset >= 2 * 1024 * 1024:
                sent.set()
                time.sleep(0.05)
            yield content[offset : offset + 256 * 1024]
        yield b"\r\n--b--\r\n"

    def killer() -> None:
        sent.wait(timeout=30)
        cluster.kill(0)

    threading.Thread(target=killer).start()
    with _on(cluster, 0, patient) as doomed, pytest.raises(httpx.TransportError):
        doomed.post("/api/v1/records", content=slow_body(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    with _on(cluster, 1, patient) as other:
        assert {r["id"] for r in other.get("/api/v1/records").json()["items"]} == before
        retried = upload(other, content, "mri.pdf", {"title": "MRI"})
        assert retried.status_code == 201, retried.text
        got = other.get(f"/api/v1/records/{retried.json()['id']}/content")
        assert got.content == content
    deadline = time.monotonic() + 5  # the balancer's health check takes the dead node out
    while time.monotonic() < deadline:
        try:
            with _on(cluster, None, patient) as anywhere:
                if all(anywhere.get("/api/v1/records").status_code == 200 for _ in range(4)):
                    break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        pytest.fail("the balancer kept sending requests to the dead node")
    cluster.nodes[0].start()
    return content, retried.json()["id"]


def test_a_redis_outage_degrades_to_per_node_guarding(cluster):
    cluster.redis.stop()
    try:
        with cluster.client(1, "127.0.0.80") as prober:
            for path in ("/.env", "/wp-login.php", "/.git/config"):
                prober.get(path)
        assert _refused(cluster, 1, "127.0.0.80")
        log = (cluster.nodes[1].data_dir.parent / "node1-server.log").read_text()
        assert "unreachable" in log and cluster.redis.password not in log
    finally:
        cluster.redis.start()
    deadline = time.monotonic() + 5
    log_path = cluster.nodes[1].data_dir.parent / "node1-server.log"
    while "reachable again" not in log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reachable again" in log_path.read_text()
