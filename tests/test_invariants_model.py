"""A stateful model test across modules (hypothesis RuleBasedStateMachine), on SQLite and on PostgreSQL.

Hypothesis interleaves uploads, partner imports and syncs (hashes, near copies by PDQ, "not illegal"
entries), decisions by three analysts, supervisor resolutions, reports crawled from a benign site on
127.0.0.1, takedown rounds, purges, imports whose re-match is lost (a crash), and restarts with the repair
pass. After every step it checks, with oracles of its own (plain SQL, not the code under test):

* no media of content that a live bank entry knows by SHA-256 can be served, to anyone;
* every confirmed cluster's hashes are in its bank with the decided verdict;
* notices cover only sightings whose verdict is illegal, and a founded report has one;
* the audit chain and its checkpoints verify;
* every acknowledged report is still there.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from live_server import pg_schema
from sqlalchemy import select

from vigie import audit, rematch, repair
from vigie.actions import takedown
from vigie.banks import service as banks
from vigie.banks.verdict import Verdict
from vigie.demo import encode, photo_like
from vigie.demo_site import Site
from vigie.errors import VigieError
from vigie.ingest import reports, worker
from vigie.review import decisions, media, queue, showable
from vigie.review.decisions import DEFAULT_CATEGORIES
from vigie.settings import Settings
from vigie.store.db import Store
from vigie.store.intake_models import Notice, NoticeItem, Report, Sighting
from vigie.store.models import Bank, Entry
from vigie.store.review_models import ReviewCluster, ReviewItem

from conftest import _PG_REASON
from servers import serving

SEEDS = range(500, 506)
PICS = {s: encode(photo_like(s, 240, 180), "JPEG") for s in SEEDS}
NEAR = {s: encode(photo_like(s, 240, 180).resize((200, 150)), "JPEG", quality=70) for s in SEEDS}
SHA = {s: hashlib.sha256(d).hexdigest() for s, d in PICS.items()}
USERS = ("ana", "bob", "carl")
CATEGORIES = ("illegal_baseline", "illegal_national", "not_illegal", "second_opinion")
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


class Invariants(RuleBasedStateMachine):
    store_kind = "sqlite"

    def __init__(self):
        super().__init__()
        import tempfile
        from pathlib import Path

        self._tmp = tempfile.TemporaryDirectory()
        self.data = Path(self._tmp.name) / "data"
        self._pg = None
        url = None
        if self.store_kind == "postgresql":
            self._pg = pg_schema()
            url = self._pg.__enter__()
        self.settings = Settings(data_dir=self.data, database_url=url, workers=1, crawl_hash_processes=False,
                                 crawl_allowed_networks=["127.0.0.1/32"], crawl_per_host_delay=0.0,
                                 crawl_timeout=2.0, crawl_fetch_seconds=5.0, review_consensus=2)
        self.store = Store.open(self.settings)
        self.site = Site()
        for s in SEEDS:
            self.site.file(f"/p{s}.jpg", PICS[s]).page(f"/page{s}.html", f'<img src="/p{s}.jpg">')
        self._srv = serving(self.site)
        self.base = self._srv.__enter__()
        self.references: list[str] = []
        self.notices_sent: list[list[int]] = []
        self.now = T0
        takedown.add_provider(self.store, "Loop", "abuse@loop.example", networks=["127.0.0.0/8"], by="model")

    def teardown(self):
        try:
            self._srv.__exit__(None, None, None)
            self.store.close()
        finally:
            if self._pg is not None:
                self._pg.__exit__(None, None, None)
            self._tmp.cleanup()

    # ------------------------------------------------------------------------------------------ rules

    @rule(seed=st.sampled_from(SEEDS))
    def upload(self, seed):
        try:
            queue.enqueue_upload(self.store, self.settings, PICS[seed], "ana")
        except VigieError as exc:
            assert exc.code == "known_material"

    @rule(seed=st.sampled_from(SEEDS), near=st.booleans(),
          legality=st.sampled_from(["baseline", "national", "not_illegal"]))
    def partner_import(self, seed, near, legality):
        name = f"partner-{legality}"
        if name not in {b.name for b in banks.list_banks(self.store)}:
            banks.create_bank(self.store, name, default_verdict=Verdict(legality=legality))
        if near:
            from vigie.hashing import hash_bytes

            banks.add_entry(self.store, name, "pdq", hash_bytes(NEAR[seed], self.settings).pdq)
        else:
            banks.import_file(self.store, name, io.BytesIO(f"{SHA[seed]}\n".encode()), "text", signal="sha256")

    @rule(seed=st.sampled_from(SEEDS))
    def import_whose_rematch_is_lost(self, seed):
        """A crash between an import's commit and its re-match: only the choke point stands between."""
        original = rematch.ensure
        rematch.ensure = lambda *a, **k: None
        try:
            self.partner_import(seed, False, "baseline")
        finally:
            rematch.ensure = original

    @rule(data=st.data(), user=st.sampled_from(USERS), category=st.sampled_from(CATEGORIES))
    def decide(self, data, user, category):
        ids = self._clusters(("open", "pending_consensus"))
        if not ids:
            return
        cid = data.draw(st.sampled_from(ids))
        try:
            decisions.decide(self.store, self.settings, cid, user, category)
        except VigieError as exc:
            assert exc.code in ("cluster_decided", "cluster_disputed")

    @rule(data=st.data(), category=st.sampled_from(CATEGORIES[:3]))
    def resolve(self, data, category):
        ids = self._clusters(("disputed",))
        if ids:
            decisions.resolve(self.store, self.settings, data.draw(st.sampled_from(ids)), "sue", category,
                              note="settled")

    @rule(seed=st.sampled_from(SEEDS))
    def report_and_crawl(self, seed):
        got = reports.submit(self.store, [f"{self.base}/page{seed}.html"], now=self.now)
        self.references.append(got["reference"])
        worker.crawl_pending(self.store, self.settings, now=self.now)
        reports.refresh_statuses(self.store, now=self.now)

    @rule()
    def takedown_round(self):
        self.now += timedelta(days=2)

        def mailer(msg, _s):
            pass

        takedown.send_notices(self.store, self.settings, self.now, mailer=mailer)

    @rule()
    def purge(self):
        from vigie.review.clock import FixedClock

        media.purge_decided(self.store, self.settings, FixedClock(datetime.now(UTC) + timedelta(days=60)))

    @rule()
    def restart(self):
        self.store.close()
        self.store = Store.open(self.settings)
        repair.run(self.store, self.settings)

    # ------------------------------------------------------------------------------------------ checks

    def _clusters(self, states):
        with self.store.sessions() as s:
            return sorted(s.scalars(select(ReviewCluster.id).where(ReviewCluster.state.in_(states),
                                                                   ReviewCluster.size > 0)))

    def _known_shas(self):
        """Oracle: SHA-256 values a live entry of an enabled match bank holds."""
        with self.store.sessions() as s:
            return set(s.scalars(select(Entry.value).join(Bank, Bank.id == Entry.bank_id).where(
                Entry.signal == "sha256", Entry.removed_at.is_(None), Entry.disabled.is_(False),
                Entry.quarantined_at.is_(None), Bank.enabled.is_(True), Bank.kind == "match")))

    @invariant()
    def known_material_is_never_served(self):
        known = self._known_shas()
        with self.store.sessions() as s:
            items = [(i.id, i.sha256) for i in s.scalars(select(ReviewItem))]
        for item_id, sha in items:
            if sha not in known:
                continue
            for who, role in (("ana", "analyst"), ("sue", "supervisor")):
                with pytest.raises((showable.KnownMaterial, showable.NotShowable)):
                    media.view_item(self.store, self.settings, item_id, who, role=role)

    @invariant()
    def confirmed_clusters_are_banked_with_their_verdict(self):
        with self.store.sessions() as s:
            for c in s.scalars(select(ReviewCluster).where(ReviewCluster.state == "decided")):
                assert c.banked_at is not None
                want = DEFAULT_CATEGORIES[c.category].verdict.as_dict()
                bank_id = s.scalar(select(Bank.id).where(Bank.name == c.bank))
                for sha in s.scalars(select(ReviewItem.sha256).where(ReviewItem.cluster_id == c.id,
                                                                     ReviewItem.state == "decided")):
                    e = s.scalar(select(Entry).where(Entry.bank_id == bank_id, Entry.signal == "sha256",
                                                     Entry.value == sha))
                    assert e is not None, f"cluster {c.id}: {sha} not in {c.bank}"
                    # A later decision on the same content may have merged another verdict into the entry;
                    # the entry's verdict is one of a decided category, never the bank's default (None).
                    assert e.verdict is not None and (e.verdict == want or c.id != _latest_cluster(s, sha))

    @invariant()
    def notices_and_founded_reports_follow_the_verdicts(self):
        from vigie.policy import action_of_dict

        with self.store.sessions() as s:
            noticed = set(s.scalars(select(NoticeItem.sighting_id).join(Notice, Notice.id == NoticeItem.notice_id)
                                    .where(Notice.status == "sent")))
            for x in s.scalars(select(Sighting).where(Sighting.id.in_(noticed))):
                assert action_of_dict(x.verdict, self.settings).illegal, (x.id, x.verdict)
                assert x.verdict != {"legality": "not_illegal"}

    @invariant()
    def audit_and_reports_hold(self):
        assert audit.verify(self.store, self.settings).ok
        with self.store.sessions() as s:
            refs = set(s.scalars(select(Report.reference)))
        assert set(self.references) <= refs


def _latest_cluster(s, sha):
    return s.scalar(select(ReviewItem.cluster_id).where(ReviewItem.sha256 == sha))


MODEL = settings(max_examples=8, stateful_step_count=14, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


class SqliteModel(Invariants):
    store_kind = "sqlite"


class PostgresModel(Invariants):
    store_kind = "postgresql"


@pytest.mark.usefixtures("media_key")
@pytest.mark.slow
def test_model_sqlite():
    run_state_machine_as_test(SqliteModel, settings=MODEL)


@pytest.mark.usefixtures("media_key")
@pytest.mark.slow
@pytest.mark.skipif(bool(_PG_REASON), reason=str(_PG_REASON))
def test_model_postgresql():
    run_state_machine_as_test(PostgresModel, settings=MODEL)
