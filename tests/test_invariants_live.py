"""Invariants against real server processes (`vigie serve --workers 2`) with parallel clients, and SIGKILL.

On SQLite and on PostgreSQL: same-instant decisions give the outcome of a serial order; parallel logins and
audit writers never fail; acknowledged reports and decisions survive a SIGKILL at a random moment; the repair
pass leaves nothing half-done. Every picture is generated; every server listens on 127.0.0.1.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from live_server import LiveServer, live_store, login, session_headers
from sqlalchemy import func, select

from vigie import accounts, audit, repair
from vigie.demo import encode, photo_like
from vigie.review import decisions, queue
from vigie.store.intake_models import Report
from vigie.store.models import Entry
from vigie.store.review_models import ReviewCluster, ReviewDecision, ReviewItem

from conftest import _PG_REASON
from test_web_kit import fast_hashing

pytestmark = [pytest.mark.usefixtures("media_key"), pytest.mark.slow]
PASSWORD = "Vigie-live-test-7fQ2pLm9"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path, monkeypatch):
    """(store, env for the server, data dir) on one store kind."""
    fast_hashing(monkeypatch)
    data = tmp_path / "data"
    env = {"VIGIE_REPORT_RATE_LIMIT_PER_HOUR": "100000", "VIGIE_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
           "VIGIE_API_RATE_LIMIT_PER_MINUTE": "100000"}
    if request.param == "postgresql" and _PG_REASON:
        pytest.skip(_PG_REASON)
    with live_store(request.param, data, env) as store:
        yield store, env, data


def jpeg(seed):
    return encode(photo_like(seed, 240, 180), "JPEG")


def users(store, names, role="analyst"):
    for n in names:
        accounts.create_user(store, n, role, PASSWORD)


def test_same_instant_decisions_through_two_server_processes(backend):
    store, env, data = backend
    st = store.settings
    users(store, ["ana", "bob", "carl"])
    cids = []
    for i in range(10):
        q = queue.enqueue_upload(store, st, jpeg(300 + i), "ana")
        decisions.decide(store, st, q["cluster"], "ana", "illegal_baseline")
        cids.append(q["cluster"])
    creds = {u: session_headers(store, u) for u in ("bob", "carl")}
    srv = LiveServer(data, env, workers=2).start()
    answers: list[tuple[int, str, int]] = []
    try:
        def vote(cid, user, cat, barrier):
            cookies, headers = creds[user]
            with httpx.Client(base_url=srv.base, cookies=cookies, headers=headers, timeout=60) as c:
                barrier.wait()
                r = c.post(f"/api/v1/review/clusters/{cid}/decide", json={"category": cat})
                answers.append((cid, user, r.status_code))

        with ThreadPoolExecutor(20) as ex:
            for cid in cids:
                b = threading.Barrier(2)
                ex.submit(vote, cid, "bob", "illegal_baseline", b)
                ex.submit(vote, cid, "carl", "not_illegal", b)
    finally:
        srv.stop()
    assert len(answers) == 20 and {code for *_, code in answers} <= {200, 409}, answers
    with store.sessions() as s:
        banked = set(s.scalars(select(Entry.value).where(Entry.signal == "sha256")))
        for cid in cids:
            c = s.get(ReviewCluster, cid)
            shas = set(s.scalars(select(ReviewItem.sha256).where(ReviewItem.cluster_id == cid)))
            assert c.state in ("decided", "disputed"), (cid, c.state)
            assert (c.state == "decided") == (shas <= banked), (cid, c.state)
            if c.state == "decided":
                assert c.category == "illegal_baseline"
        # Every acknowledged decision is in the store.
        for cid, user, code in answers:
            if code == 200:
                assert s.scalar(select(func.count()).select_from(ReviewDecision).where(
                    ReviewDecision.cluster_id == cid, ReviewDecision.user == user)) == 1
    assert audit.verify(store).ok


def test_parallel_logins_through_two_server_processes_all_succeed_and_are_audited(backend):
    store, env, data = backend
    names = [f"user{i}" for i in range(20)]
    users(store, names)
    srv = LiveServer(data, env, workers=2).start()
    codes = []
    try:
        def one(name):
            with httpx.Client(base_url=srv.base, timeout=60) as c:
                codes.append(login(c, name, PASSWORD).status_code)

        with ThreadPoolExecutor(20) as ex:
            list(ex.map(one, names + names))
    finally:
        srv.stop()
    assert len(codes) == 40 and all(c == 303 for c in codes), codes
    oks = [r for r in audit.iter_records(store) if r.action == "login.ok"]
    assert len(oks) == 40
    assert audit.verify(store).ok


def test_acknowledged_reports_and_decisions_survive_sigkill(backend):
    """Clients submit reports and decisions while the server is SIGKILLed at a random moment; after a restart
    and the repair pass, every acknowledged one is there and nothing is half-done."""
    store, env, data = backend
    st = store.settings
    users(store, ["ana", "bob"])
    cids = []
    for i in range(12):
        q = queue.enqueue_upload(store, st, jpeg(400 + i), "ana")
        decisions.decide(store, st, q["cluster"], "ana", "illegal_national")
        cids.append(q["cluster"])
    cookies, headers = session_headers(store, "bob")
    srv = LiveServer(data, env, workers=2).start()
    acked_reports: list[str] = []
    acked_decisions: list[int] = []
    stop = threading.Event()

    def reporter(k):
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = c.post("/api/v1/reports", json={"urls": [f"http://example.com/{k}/{i}"], "seen": ["image"]})
                except httpx.HTTPError:
                    continue
                if r.status_code == 201:
                    acked_reports.append(r.json()["reference"])

    def decider():
        with httpx.Client(base_url=srv.base, cookies=cookies, headers=headers, timeout=30) as c:
            for cid in cids:
                if stop.is_set():
                    return
                try:
                    r = c.post(f"/api/v1/review/clusters/{cid}/decide", json={"category": "illegal_national"})
                except httpx.HTTPError:
                    continue
                if r.status_code == 200:
                    acked_decisions.append(cid)

    threads = [threading.Thread(target=reporter, args=(k,)) for k in range(3)] + [threading.Thread(target=decider)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 90
    while len(acked_reports) < 3 and time.monotonic() < deadline:  # both workers busy before the kill
        time.sleep(0.1)
    time.sleep(random.uniform(0.0, 1.5))
    srv.kill()
    stop.set()
    for t in threads:
        t.join(60)
    assert acked_reports, "no report was acknowledged before the kill"
    # Restart: the server's start runs the repair pass; run it here too and check.
    srv2 = LiveServer(data, env, workers=1).start()
    srv2.stop()
    repair.run(store, st)
    with store.sessions() as s:
        refs = set(s.scalars(select(Report.reference)))
        assert set(acked_reports) <= refs
        for cid in acked_decisions:
            c = s.get(ReviewCluster, cid)
            assert c.state == "decided" and c.banked_at is not None and c.variants_at is not None
        # Nothing half-done: every decided cluster is banked, every banked item's hashes are in the bank.
        for c in s.scalars(select(ReviewCluster).where(ReviewCluster.state == "decided")):
            assert c.banked_at is not None
            for sha in s.scalars(select(ReviewItem.sha256).where(ReviewItem.cluster_id == c.id)):
                assert s.scalar(select(func.count()).select_from(Entry).where(Entry.value == sha)) == 1
    assert audit.verify(store, st).ok


def test_parallel_wrong_passwords_through_two_server_processes_lock_the_account(backend):
    store, env, data = backend
    users(store, ["victim"])
    srv = LiveServer(data, env, workers=2).start()
    codes = []
    try:
        def one(i):
            with httpx.Client(base_url=srv.base, timeout=60) as c:
                codes.append(login(c, "victim", f"wrong-password-{i:04d}").status_code)

        with ThreadPoolExecutor(12) as ex:
            list(ex.map(one, range(60)))
        with httpx.Client(base_url=srv.base, timeout=60) as c:
            right = login(c, "victim", PASSWORD).status_code
    finally:
        srv.stop()
    assert len(codes) == 60 and 303 not in codes
    assert right != 303, "the account was not locked by 60 parallel wrong passwords"
    failed = [r for r in audit.iter_records(store) if r.action == "login.failed"]
    assert len(failed) == 61  # every attempt counted and audited, the locked one included
    assert audit.verify(store).ok


def test_a_scan_queued_in_batches_by_two_runs_while_two_servers_show_it(backend, tmp_path):
    """A scan is queued for review one content per batch by two runs at once (`vigie scan --queue` twice) while
    analysts look at its items through two server processes and a partner's list naming one of its pictures is
    imported half-way: no request that starts after the import is shown that picture (at the moment of showing),
    every content is queued once (the outcome of a serial order), and the audit trail verifies."""
    import hashlib
    import io

    from vigie.banks import service as banks
    from vigie.ingest.scan import run_scan, scan_key
    from vigie.store.models import Scan

    store, env, data = backend
    st = store.settings
    users(store, ["ana", "bob"])
    src = tmp_path / "evidence"
    src.mkdir()
    pics = [jpeg(900 + i) for i in range(8)]
    for i, p in enumerate(pics):
        (src / f"p{i}.jpg").write_bytes(p)
    (src / "p0-copy.jpg").write_bytes(pics[0])
    run_scan(store, st, [str(src)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(src)], None)))
    late = hashlib.sha256(pics[3]).hexdigest()
    creds = [session_headers(store, u) for u in ("ana", "bob")]
    srv = LiveServer(data, env, workers=2).start()
    imported_at: list[float] = []
    late_shown: list[tuple[float, int]] = []  # (request start, status) for the picture the partner knows
    stop = threading.Event()
    failures: list[BaseException] = []

    def enqueue():
        try:
            queue.enqueue_scan(store, st, scan_id, batch=1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    def look(k):
        cookies, headers = creds[k]
        with httpx.Client(base_url=srv.base, cookies=cookies, headers=headers, timeout=30) as c:
            while not stop.is_set():
                with store.sessions() as s:
                    items = list(s.execute(select(ReviewItem.id, ReviewItem.sha256)))
                for item_id, sha in items:
                    t = time.monotonic()
                    r = c.get(f"/review/items/{item_id}/media")
                    if sha == late:
                        late_shown.append((t, r.status_code))

    try:
        lookers = [threading.Thread(target=look, args=(k,)) for k in (0, 1)]
        for t in lookers:
            t.start()
        runs = [threading.Thread(target=enqueue) for _ in range(2)]
        for t in runs:
            t.start()
        deadline = time.monotonic() + 60
        while not late_shown and time.monotonic() < deadline:  # the picture is queued and looked at first
            time.sleep(0.05)
        banks.create_bank(store, "partner")
        banks.import_file(store, "partner", io.BytesIO(f"{late}\n".encode()), "text", signal="sha256")
        imported_at.append(time.monotonic())
        for t in runs:
            t.join(120)
        time.sleep(1.0)  # the lookers go on after the import
    finally:
        stop.set()
        for t in lookers:
            t.join(60)
        srv.stop()
    assert not failures, failures
    assert late_shown and any(code == 200 for t, code in late_shown if t < imported_at[0])  # shown while unknown
    after = [code for t, code in late_shown if t > imported_at[0]]
    assert after and 200 not in after, after
    with store.sessions() as s:
        shas = list(s.scalars(select(ReviewItem.sha256)))
    assert sorted(shas) == sorted({hashlib.sha256(p).hexdigest() for p in pics})  # each content once
    assert audit.verify(store, st).ok
