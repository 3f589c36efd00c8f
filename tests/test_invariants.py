"""The invariants where modules meet, replayed from the sequences observed on the landed code (issue 15).

Each test runs on SQLite and PostgreSQL. Every picture is generated (vigie.demo).
"""

from __future__ import annotations

import hashlib
import io
import threading

import pytest
from sqlalchemy import delete, func, select, update

from vigie import audit, policy, rematch, repair
from vigie.banks import service as banks
from vigie.banks.verdict import Verdict
from vigie.demo import encode, photo_like
from vigie.errors import Conflict
from vigie.review import decisions, media, queue, showable
from vigie.store.audit_models import AuditRecord
from vigie.store.models import BankChange, Entry
from vigie.store.review_models import MediaBlob, ReviewCluster, ReviewItem

pytestmark = pytest.mark.usefixtures("media_key")


def jpeg(seed, w=320, h=240):
    return encode(photo_like(seed, w, h), "JPEG")


def sha(data):
    return hashlib.sha256(data).hexdigest()


def item_row(store, item_id):
    with store.sessions() as s:
        return s.get(ReviewItem, item_id)


def live_blobs(store, sha256):
    with store.sessions() as s:
        return s.scalar(select(func.count()).select_from(MediaBlob).where(MediaBlob.sha256 == sha256,
                                                                         MediaBlob.purged_at.is_(None)))


# ---------------------------------------------------------------------------------------------- 1. never shown


@pytest.mark.parametrize("how", ["sha256", "pdq_near"])
def test_a_bank_import_after_queueing_stops_the_media_at_once(store, how):
    pic = jpeg(70)
    q = queue.enqueue_upload(store, store.settings, pic, "ana")
    data, _ = media.view_item(store, store.settings, q["item"], "bob")
    assert data[:2] == b"\xff\xd8"
    banks.create_bank(store, "partner")
    if how == "sha256":
        banks.import_file(store, "partner", io.BytesIO(f"{sha(pic)}\n".encode()), "text", signal="sha256")
    else:  # a re-encoded copy known by PDQ only (distance > 0)
        from vigie.hashing import hash_bytes

        other = encode(photo_like(70, 320, 240).resize((300, 225)), "JPEG", quality=70)
        rec = hash_bytes(other, store.settings)
        assert rec.sha256 != sha(pic)
        banks.add_entry(store, "partner", "pdq", rec.pdq)
    # The import re-matched the queue: the item is known, out of the queue, its media purged.
    assert item_row(store, q["item"]).state == "known"
    assert live_blobs(store, sha(pic)) == 0
    assert queue.list_queue(store) == []
    with pytest.raises(showable.KnownMaterial) as e:
        media.view_item(store, store.settings, q["item"], "bob")
    assert e.value.http_status == 410 and e.value.code == "known_material"


def test_the_choke_point_holds_when_the_rematch_never_ran(store, monkeypatch):
    """A crash between the import and its re-match: the media route still refuses, by matching at that moment."""
    pic = jpeg(71)
    q = queue.enqueue_upload(store, store.settings, pic, "ana")
    monkeypatch.setattr(rematch, "ensure", lambda *a, **k: None)  # the re-match is lost (crash)
    banks.create_bank(store, "partner")
    banks.import_file(store, "partner", io.BytesIO(f"{sha(pic)}\n".encode()), "text", signal="sha256")
    assert item_row(store, q["item"]).state == "queued"
    assert rematch.pending(store) >= 1
    for steps in ((), ("colour",), ("colour", "sharp", "full")):
        with pytest.raises(showable.KnownMaterial):
            media.view_item(store, store.settings, q["item"], "bob", steps=steps)
    # The refusal took it out of the queue and purged its media, and said so in the audit trail.
    assert item_row(store, q["item"]).state == "known"
    assert live_blobs(store, sha(pic)) == 0
    assert "review.refused_known" in {r.action for r in audit.iter_records(store)}
    monkeypatch.undo()
    assert repair.run(store, store.settings)["rematch"]["changes"] >= 1
    assert rematch.pending(store) == 0


def test_restore_and_quarantine_release_make_items_known(store):
    pic, pic2 = jpeg(72), jpeg(73)
    banks.create_bank(store, "partner")
    banks.add_entry(store, "partner", "sha256", sha(pic))
    banks.remove_entry(store, "partner", sha(pic), signal="sha256")
    eid = banks.add_entry(store, "partner", "sha256", sha(pic2))
    with store.session() as s:
        s.execute(update(Entry).where(Entry.id == eid).values(quarantined_at=func.now()))
    a = queue.enqueue_upload(store, store.settings, pic, "ana")
    b = queue.enqueue_upload(store, store.settings, pic2, "ana")
    banks.restore_entry(store, "partner", sha(pic), signal="sha256")
    assert item_row(store, a["item"]).state == "known"
    banks.release_quarantine(store, eid)
    assert item_row(store, b["item"]).state == "known"


def test_decided_and_disputed_clusters_are_shown_only_to_whom_needs_them(store):
    st = store.settings
    q = queue.enqueue_upload(store, st, jpeg(74), "ana")
    cid = q["cluster"]
    decisions.decide(store, st, cid, "ana", "illegal_baseline")
    decisions.decide(store, st, cid, "bob", "not_illegal")
    assert item_row(store, q["item"]).cluster_id == cid
    media.view_item(store, st, q["item"], "ana")  # a voter
    media.view_item(store, st, q["item"], "sue", role="supervisor")
    with pytest.raises(showable.NotShowable):
        media.view_item(store, st, q["item"], "carl")  # not a voter
    decisions.resolve(store, st, cid, "sue", "illegal_national", note="checked")
    for who, role in (("ana", "analyst"), ("sue", "supervisor"), ("carl", "analyst")):
        with pytest.raises(showable.NotShowable):
            media.view_item(store, st, q["item"], who, role=role)


# ---------------------------------------------------------------------------------------------- 2. verdicts


def test_policy_table():
    a = policy.action_for(Verdict(legality="baseline"))
    assert a.illegal and a.notice and a.may_notice(None) and a.may_notice("NL")
    n = policy.action_for(Verdict(legality="national", jurisdictions=("fr",)))
    assert n.illegal and n.may_notice("FR") and not n.may_notice("NL") and not n.may_notice(None)
    ni = policy.action_for(Verdict(legality="not_illegal"))
    assert not ni.illegal and not ni.notice and ni.spares_review and not ni.may_notice("FR")
    ai = policy.action_for(Verdict(synthetic="ai_generated"))
    assert ai.illegal

    class S:
        policy_ai_generated = "not_illegal"
        policy_unclassified = "not_illegal"
        jurisdiction = "BE"

    assert not policy.action_for(Verdict(synthetic="ai_generated"), S).illegal
    assert not policy.action_for(None, S).illegal and policy.action_for(None).illegal
    assert policy.action_for(Verdict(legality="national"), S).jurisdictions == ("BE",)

    class M:
        def __init__(self, legality, d):
            self.verdict, self.distance, self.signal = Verdict(legality=legality), d, "pdq"

    best, act = policy.strongest([M("not_illegal", 0), M("national", 10), M("baseline", 20)])
    assert best.verdict.legality == "baseline" and act.illegal


def test_decisions_go_only_into_banks_open_to_review(store):
    st = store.settings
    banks.create_bank(store, "interpol-import", default_verdict=Verdict(legality="baseline"))
    q = queue.enqueue_upload(store, st, jpeg(75), "ana")
    with pytest.raises(Conflict) as e:
        decisions.decide(store, st, q["cluster"], "ana", "not_illegal", bank="interpol-import")
    assert e.value.code == "bank_closed"
    banks.set_review_target(store, "interpol-import", True, by="admin")
    assert "bank.review_target" in {r.action for r in audit.iter_records(store)}
    decisions.decide(store, st, q["cluster"], "ana", "not_illegal", bank="interpol-import")
    r = decisions.decide(store, st, q["cluster"], "bob", "not_illegal")
    assert r["state"] == "decided" and r["bank"] == "interpol-import"
    # The entries carry the decided verdict, never the bank's default.
    with store.sessions() as s:
        vs = {e.signal: e.verdict for e in s.scalars(select(Entry))}
    assert vs["sha256"] == {"legality": "not_illegal"} and vs["pdq"] == {"legality": "not_illegal"}


def test_a_decision_and_its_banking_are_one_transaction(store, monkeypatch):
    st = store.settings
    q = queue.enqueue_upload(store, st, jpeg(76), "ana")
    decisions.decide(store, st, q["cluster"], "ana", "illegal_baseline")

    def boom(*a, **k):
        raise RuntimeError("killed while banking")

    monkeypatch.setattr(banks, "add_hashes", boom)
    with pytest.raises(RuntimeError):
        decisions.decide(store, st, q["cluster"], "bob", "illegal_baseline")
    monkeypatch.undo()
    c = item_row(store, q["item"])
    assert c.state == "queued"  # nothing half-done: not decided without its hashes
    with store.sessions() as s:
        assert s.get(ReviewCluster, q["cluster"]).state == "pending_consensus"
    r = decisions.decide(store, st, q["cluster"], "bob", "illegal_baseline")
    with store.sessions() as s:
        cl = s.get(ReviewCluster, q["cluster"])
        assert cl.state == "decided" and cl.banked_at is not None and cl.variants_at is not None
    assert r["banked"]["with_media"] == 1


# ---------------------------------------------------------------------------------------------- 4. concurrency


def test_same_instant_decisions_give_a_serial_outcome(store):
    """Two analysts decide each of 8 clusters at once, one confirming and one disagreeing with an earlier vote."""
    st = store.settings
    cids = []
    for i in range(8):
        q = queue.enqueue_upload(store, st, jpeg(100 + i), "ana")
        decisions.decide(store, st, q["cluster"], "ana", "illegal_baseline")
        cids.append(q["cluster"])
    errors = []

    def vote(cid, user, cat, barrier):
        barrier.wait()
        try:
            decisions.decide(store, st, cid, user, cat)
        except Conflict:
            pass  # decided or disputed by the other one first: a serial outcome
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    for cid in cids:
        b = threading.Barrier(2)
        ts = [threading.Thread(target=vote, args=(cid, "bob", "illegal_baseline", b)),
              threading.Thread(target=vote, args=(cid, "carl", "not_illegal", b))]
        [t.start() for t in ts]
        [t.join() for t in ts]
    assert not errors
    with store.sessions() as s:
        banked = set(s.scalars(select(Entry.value).where(Entry.signal == "sha256", Entry.removed_at.is_(None))))
        for cid in cids:
            c = s.get(ReviewCluster, cid)
            shas = set(s.scalars(select(ReviewItem.sha256).where(ReviewItem.cluster_id == cid)))
            assert c.state in ("decided", "disputed")
            if c.state == "disputed":
                assert not shas & banked, f"cluster {cid} disputed but banked"
            else:
                assert shas <= banked and c.category == "illegal_baseline"
    assert audit.verify(store).ok


def test_parallel_audit_appends_inside_transactions_never_fail(store):
    errors = []

    def work(i):
        try:
            for j in range(10):
                with store.session() as s:
                    audit.record(store, f"u{i}", "test.parallel", "x", j, {"i": i}, session=s)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    v = audit.verify(store)
    assert v.ok and v.records == 60


# ---------------------------------------------------------------------------------------------- 6. audit for court


def _trail(store, n=6):
    for i in range(n):
        audit.record(store, "ana", "x.test", "thing", i, {"i": i})


@pytest.mark.parametrize("tamper,code", [
    ("edit_note", "edited"), ("delete_middle", "deleted"), ("truncate_tail", "truncated"),
    ("rewrite_chain", "rewritten"), ("empty", "emptied"), ("swap", "reordered"), ("insert", "inserted"),
])
def test_verify_names_every_kind_of_tampering(store, tmp_path, tamper, code):
    st = store.settings
    _trail(store)
    cp = audit.checkpoint(store, st)
    assert cp["seq"] == 6 and audit.verify(store, st).ok
    with store.session() as s:
        if tamper == "edit_note":
            s.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(note="nothing happened"))
        elif tamper == "delete_middle":
            s.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
        elif tamper == "truncate_tail":
            s.execute(delete(AuditRecord).where(AuditRecord.seq >= 5))
        elif tamper == "empty":
            s.execute(delete(AuditRecord))
        elif tamper in ("swap", "insert", "rewrite_chain"):
            rows = list(s.scalars(select(AuditRecord).order_by(AuditRecord.seq)))
            recs = [(r.at, r.actor, r.action, r.object_type, r.object_id, r.detail) for r in rows]
            s.execute(delete(AuditRecord))
            s.flush()
            if tamper == "swap":
                recs[2], recs[3] = recs[3], recs[2]
                # keep the original hashes of the swapped records (an edit of order, not of content)
                hashes = [r.hash for r in rows]
                hashes[2], hashes[3] = hashes[3], hashes[2]
                prevs = [r.prev_hash for r in rows]
                prevs[2], prevs[3] = prevs[3], prevs[2]
                for i, (rec, h, p) in enumerate(zip(recs, hashes, prevs), 1):
                    s.add(AuditRecord(id=i, seq=i, at=rec[0], actor=rec[1], action=rec[2], object_type=rec[3],
                                      object_id=rec[4], detail=rec[5], prev_hash=p, hash=h, version=2))
            elif tamper == "insert":
                olds = list(rows)
                for i, r in enumerate(olds[:3], 1):
                    s.add(AuditRecord(id=i, seq=i, at=r.at, actor=r.actor, action=r.action,
                                      object_type=r.object_type, object_id=r.object_id, detail=r.detail,
                                      prev_hash=r.prev_hash, hash=r.hash, version=r.version))
                fake = AuditRecord(id=4, seq=4, at=olds[2].at, actor="mallory", action="x.forged", object_type=None,
                                   object_id=None, detail=None, prev_hash=olds[2].hash, hash="f" * 64, version=2)
                s.add(fake)
                for i, r in enumerate(olds[3:], 5):
                    s.add(AuditRecord(id=i, seq=i, at=r.at, actor=r.actor, action=r.action,
                                      object_type=r.object_type, object_id=r.object_id, detail=r.detail,
                                      prev_hash=r.prev_hash, hash=r.hash, version=r.version))
            else:  # the whole chain recomputed after changing record 2: internally sound
                prev = audit.GENESIS
                for i, rec in enumerate(recs, 1):
                    actor = "mallory" if i == 2 else rec[1]
                    h = hashlib.sha256(audit._canonical(i, rec[0], actor, rec[2], rec[3], rec[4], rec[5], prev,
                                                        version=2, note=None, rid=i)).hexdigest()
                    s.add(AuditRecord(id=i, seq=i, at=rec[0], actor=actor, action=rec[2], object_type=rec[3],
                                      object_id=rec[4], detail=rec[5], prev_hash=prev, hash=h, version=2))
                    prev = h
    v = audit.verify(store, st)
    assert not v.ok
    assert code in {p.code for p in v.problems}, v.as_dict()
    # The witness outside the database sees it too, even when the database's checkpoints are deleted.
    from vigie.store.audit_models import AuditCheckpoint

    with store.session() as s:
        s.execute(delete(AuditCheckpoint))
    if code in ("truncated", "rewritten", "emptied"):
        assert not audit.verify(store, st).ok
        assert not audit.verify(store, witness=audit.witness_path(st)).ok


def test_a_forged_checkpoint_is_refused(store):
    st = store.settings
    _trail(store, 3)
    audit.checkpoint(store, st)
    path = audit.witness_path(st)
    import json

    doc = json.loads(path.read_text().splitlines()[0])
    doc["seq"], doc["records"] = 2, 2
    path.write_text(json.dumps(doc) + "\n")
    v = audit.verify(store, st)
    assert not v.ok and "bad_checkpoint" in {p.code for p in v.problems}


# ---------------------------------------------------------------------------------------------- 5. crash repair


def test_repair_banks_clusters_decided_before_banking_was_atomic(store):
    st = store.settings
    q = queue.enqueue_upload(store, st, jpeg(77), "ana")
    # A cluster left as older versions left it after a crash: decided, hashes in no bank, no variants.
    with store.session() as s:
        c = s.get(ReviewCluster, q["cluster"])
        c.state, c.category, c.verdict, c.bank = "decided", "illegal_baseline", {"legality": "baseline"}, "rc"
        c.decided_by = ["ana", "bob"]
        s.get(ReviewItem, q["item"]).state = "decided"
    out = repair.run(store, st)
    assert out["clusters"] == 1
    with store.sessions() as s:
        c = s.get(ReviewCluster, q["cluster"])
        assert c.banked_at is not None and c.variants_at is not None
        assert s.scalar(select(func.count()).select_from(Entry).where(Entry.signal == "sha256")) == 1
    assert repair.run(store, st)["clusters"] == 0


def test_bank_changes_are_noted_in_their_transaction(store, monkeypatch):
    banks.create_bank(store, "b")
    monkeypatch.setattr(rematch, "ensure", lambda *a, **k: None)
    banks.import_file(store, "b", io.BytesIO(b"d41d8cd98f00b204e9800998ecf8427e\n"), "text")
    with store.sessions() as s:
        reasons = [c.reason for c in s.scalars(select(BankChange))]
    assert reasons == ["import"]
    # A failed import notes nothing.
    with pytest.raises(Exception):  # noqa: B017
        banks.import_file(store, "b", io.BytesIO(b"zzzz\n"), "text")
    assert rematch.pending(store) == 1


def test_parallel_reports_of_one_new_url_all_succeed_and_join_one_case(store):
    from vigie.ingest import reports
    from vigie.store.intake_models import Report, ReportedUrl

    errors, refs = [], []

    def submit(i):
        try:
            refs.append(reports.submit(store, ["http://example.com/same-new-page"], seen=["image"])["reference"])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    ts = [threading.Thread(target=submit, args=(i,)) for i in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors and len(refs) == 8
    with store.sessions() as s:
        (ru,) = s.scalars(select(ReportedUrl)).all()
        assert ru.report_count == 8
        assert s.scalar(select(func.count()).select_from(Report)) == 8
    # every acknowledged report has its audit record, in the same transaction
    assert sum(1 for r in audit.iter_records(store) if r.action == "report.received") == 8


def test_past_scans_unknown_rows_are_reclassified_by_the_workers_pass(store, tmp_path):
    from vigie.ingest.scan import run_scan
    from vigie.store.models import ScanFile

    src = tmp_path / "evidence"
    src.mkdir()
    pic = jpeg(78)
    (src / "p.jpg").write_bytes(pic)
    run_scan(store, store.settings, [str(src)], str(tmp_path / "out"), workers=1)
    banks.create_bank(store, "partner")
    banks.import_file(store, "partner", io.BytesIO(f"{sha(pic)}\n".encode()), "text", signal="sha256")
    with store.sessions() as s:  # the import's own pass left the scan rows to the worker
        assert s.scalar(select(ScanFile.klass).where(ScanFile.sha256 == sha(pic))) == "unknown"
    assert repair.run(store, store.settings)["rematch"]["scan_rows"] == 1
    with store.sessions() as s:
        row = s.scalar(select(ScanFile).where(ScanFile.sha256 == sha(pic)))
    assert row.klass == "exact" and "reclassified" in row.flags and row.matches[0]["bank"] == "partner"
    assert "scan_rows" not in repair.run(store, store.settings)["rematch"]  # done once


def test_a_daily_lock_reached_by_parallel_requests_is_written_once(store):
    """Heartbeat and media requests of one analyst reach the daily limit at the same moment: one lock, one
    audit record, on both stores."""
    from datetime import UTC, datetime

    from vigie.review import wellbeing
    from vigie.review.clock import FixedClock

    st = store.settings
    q = queue.enqueue_upload(store, st, jpeg(79), "ana")
    wellbeing.set_team_policy(store, {"daily_limit_min": 10, "warning_min": 5}, "sue")
    tr = wellbeing.ExposureTracker(store)
    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    tr.start_reveal("ana", q["item"], "colour", clock, cluster_id=q["cluster"])
    for _ in range(21):  # 10.5 minutes of a reveal kept alive by the page's heartbeat
        clock.advance(seconds=30)
        tr.heartbeat("ana", clock)
    errors = []

    def status():
        try:
            wellbeing.ExposureTracker(store).status("ana", clock)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    ts = [threading.Thread(target=status) for _ in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    assert tr.status("ana", clock)["locked"]
    assert sum(1 for r in audit.iter_records(store) if r.action == "review.lock") == 1


def test_repair_deletes_media_files_no_live_row_points_to(store):
    import os
    import time as _time

    from vigie.repair import GRACE_SECONDS

    st = store.settings
    q = queue.enqueue_upload(store, st, jpeg(80), "ana")
    orphan = st.data_dir / "media" / "ab" / ("ab" + "0" * 62 + ".bin")  # written just before a crash
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"\x00" * 64)
    old = _time.time() - GRACE_SECONDS - 5
    os.utime(orphan, (old, old))
    fresh = orphan.with_name("ab" + "1" * 62 + ".bin")  # another process may be about to commit its row
    fresh.write_bytes(b"\x00" * 64)
    assert repair.run(store, st)["media_files"] == 1
    assert not orphan.exists() and fresh.exists()
    assert live_blobs(store, q["sha256"]) >= 1  # the item's own files are untouched
    assert repair.run(store, st, sweep_media=False)["media_files"] is None  # the worker's rounds: hourly
