"""Decisions on clusters: categories, consensus, disputes, and the bank that learns the result.

Categories come from the setting `review_categories` (default: `DEFAULT_CATEGORIES`), each
mapped to a `Verdict` (what the bank entries will say) or to none (`second_opinion`,
which classifies nothing).

Consensus (`review_consensus`, default 2; Project Arachnid uses 3): a classification takes
effect when that many *different* people chose the same category. A person's later
decision on the same cluster supersedes their earlier one, so nobody counts twice. The
rule is the same for every classification, `not_illegal` included: a confirmed decision
puts the hashes in a bank, so the picture is never shown again, and a wrong
"not illegal" would hide illegal material from review for good; it deserves the same
second pair of eyes as an illegal one.

Two live decisions with different categories make the cluster `disputed`: analysts no
longer get it, and a supervisor settles it with `resolve` (which also lets a supervisor
decide any cluster still waiting). As many `second_opinion` requests as the consensus
needs also send it to a supervisor.

When a decision is confirmed, the hashes of every item of the cluster (MD5, SHA-1,
SHA-256, PDQ; through `banks.service.add_media` when the encrypted original is still
kept, which also stores the crop and border variants, else the hashes alone) go into
the chosen bank with the category's verdict and the names of the deciders; the bank is
the one given with the confirming decision, else the latest one given with a decision of
the same category (a superseded one included), else `review_bank` (default "review-confirmed", created when missing).
Waiting items that the bank now knows (near copies in other clusters) leave the queue.
Every step is in the audit trail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from vigie import audit
from vigie.banks.verdict import Verdict, parse_verdict
from vigie.errors import Conflict, NotFound, UsageError
from vigie.review.clock import Clock, aware, now_utc
from vigie.store.db import Store
from vigie.store.review_models import ReviewCluster, ReviewDecision, ReviewItem

DEFAULT_BANK = "review-confirmed"


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    #: What the bank entries say; None for a category that classifies nothing (a second opinion).
    verdict: Verdict | None

    @property
    def classifies(self) -> bool:
        return self.verdict is not None

    def as_dict(self) -> dict:
        return {"name": self.name, "label": self.label,
                "verdict": self.verdict.as_dict() if self.verdict else None}


DEFAULT_CATEGORIES: dict[str, Category] = {c.name: c for c in (
    Category("illegal_baseline", "Illegal: INTERPOL baseline (illegal everywhere)", Verdict(legality="baseline")),
    Category("illegal_national", "Illegal under national law", Verdict(legality="national")),
    Category("not_illegal", "Not illegal", Verdict(legality="not_illegal")),
    # Legality of generated material differs between countries: set it in review_categories where the law is clear.
    Category("ai_generated", "AI-generated", Verdict(synthetic="ai_generated")),
    Category("second_opinion", "Needs a second opinion", None),
)}


def categories(settings=None) -> dict[str, Category]:
    """The configured scheme: `review_categories` maps a name to {"label": ..., "verdict": facets dict,
    "scheme:label" text, or null for a non-classifying category}; default DEFAULT_CATEGORIES."""
    conf = getattr(settings, "review_categories", None) if settings is not None else None
    if not conf:
        return dict(DEFAULT_CATEGORIES)
    out = {}
    for name, spec in dict(conf).items():
        spec = spec if isinstance(spec, dict) else {"verdict": spec}
        v = spec.get("verdict")
        verdict = None if v is None else Verdict.from_dict(v) if isinstance(v, dict) else parse_verdict(str(v))
        if verdict is None and v is not None:
            verdict = Verdict()
        out[name] = Category(name, spec.get("label", name.replace("_", " ")), verdict)
    return out


def consensus(settings=None) -> int:
    return max(1, int(getattr(settings, "review_consensus", 2) if settings is not None else 2))


def _category(settings, name: str, *, classifying: bool = False) -> Category:
    cats = categories(settings)
    cat = cats.get(name)
    if cat is None or (classifying and not cat.classifies):
        allowed = [c for c in cats.values() if c.classifies or not classifying]
        raise UsageError(f"unknown category {name!r} (known: {', '.join(c.name for c in allowed)})",
                         code="bad_category")
    return cat


def _check_bank(store: Store, bank: str | None) -> None:
    if bank is None:
        return
    from vigie.banks.service import get_bank

    get_bank(store, bank)  # NotFound bank_not_found before anything is written


def _live(s, cluster_id: int) -> list[ReviewDecision]:
    return list(s.scalars(select(ReviewDecision).where(ReviewDecision.cluster_id == cluster_id,
                                                       ReviewDecision.superseded.is_(False))
                          .order_by(ReviewDecision.id)))


def decide(store: Store, settings, cluster_id: int, user: str, category: str, note: str | None = None, *,
           bank: str | None = None, clock: Clock | None = None) -> dict:
    """An analyst's decision on a cluster; see the module docstring for consensus and disputes.

    Returns {cluster, state, category, votes, needed, bank, banked}. Raises Conflict `cluster_decided`
    or `cluster_disputed` when the cluster no longer takes analysts' decisions."""
    cat = _category(settings, category)
    _check_bank(store, bank)
    needed = consensus(settings)
    cats = categories(settings)
    now = now_utc(clock)
    with store.session() as s:
        c = _open_cluster(s, cluster_id)
        if c.state == "disputed":
            raise Conflict(f"cluster {cluster_id} is disputed: a supervisor decides it", code="cluster_disputed")
        for d in _live(s, cluster_id):
            if d.user == user:
                d.superseded = True  # a person counts once: their latest decision
        s.add(ReviewDecision(cluster_id=cluster_id, user=user, role="analyst", category=cat.name, note=note,
                             bank=bank, at=now))
        s.flush()
        live = _live(s, cluster_id)
        votes = Counter(d.category for d in live if cats.get(d.category, cat).classifies)
        second = sum(1 for d in live if not cats.get(d.category, cat).classifies)
        audit.record(store, user, "review.decision", "review_cluster", cluster_id,
                     {"category": cat.name, "note": bool(note), "bank": bank}, session=s)
        confirmed = None
        if len(votes) > 1:
            c.state = "disputed"
            audit.record(store, user, "review.disputed", "review_cluster", cluster_id, {"votes": dict(votes)},
                         session=s)
        elif votes and max(votes.values()) >= needed:
            confirmed = next(iter(votes))
            agree = [d for d in live if d.category == confirmed]
            earlier = s.scalars(select(ReviewDecision.bank).where(
                ReviewDecision.cluster_id == cluster_id, ReviewDecision.category == confirmed,
                ReviewDecision.bank.is_not(None)).order_by(ReviewDecision.id.desc()).limit(1)).first()
            chosen = bank or earlier
            _confirm(store, settings, s, c, cats[confirmed], [d.user for d in agree], chosen, now, by=user)
        elif second >= needed:
            c.state = "disputed"
            audit.record(store, user, "review.disputed", "review_cluster", cluster_id,
                         {"second_opinions": second}, session=s)
        else:
            c.state = "pending_consensus"
        result = {"cluster": cluster_id, "state": c.state, "category": c.category, "votes": dict(votes),
                  "second_opinions": second, "needed": needed, "bank": c.bank}
    result["banked"] = _after_confirm(store, settings, cluster_id, user) if confirmed else None
    return result


def _open_cluster(s, cluster_id: int) -> ReviewCluster:
    """The cluster, locked for this transaction, if it still takes decisions."""
    c = s.get(ReviewCluster, cluster_id, with_for_update=True)
    if c is None:
        raise NotFound(f"no review cluster {cluster_id}", code="cluster_not_found")
    if c.state in ("decided", "known"):
        raise Conflict(f"cluster {cluster_id} is decided already", code="cluster_decided")
    return c


def resolve(store: Store, settings, cluster_id: int, supervisor: str, category: str, note: str | None = None, *,
            bank: str | None = None, clock: Clock | None = None) -> dict:
    """A supervisor settles a disputed cluster, or decides any waiting one, alone (the caller checks the role)."""
    cat = _category(settings, category, classifying=True)
    _check_bank(store, bank)
    now = now_utc(clock)
    with store.session() as s:
        c = _open_cluster(s, cluster_id)
        was = c.state
        s.add(ReviewDecision(cluster_id=cluster_id, user=supervisor, role="supervisor", category=cat.name,
                             note=note, bank=bank, at=now))
        s.flush()
        audit.record(store, supervisor, "review.resolve", "review_cluster", cluster_id,
                     {"category": cat.name, "was": was, "note": bool(note), "bank": bank}, session=s)
        _confirm(store, settings, s, c, cat, [supervisor], bank, now, by=supervisor)
        result = {"cluster": cluster_id, "state": c.state, "category": c.category, "bank": c.bank, "was": was}
    result["banked"] = _after_confirm(store, settings, cluster_id, supervisor)
    return result


def _confirm(store, settings, s, c: ReviewCluster, cat: Category, users: list[str], bank: str | None, now,
             *, by: str) -> None:
    c.state, c.category, c.verdict = "decided", cat.name, cat.verdict.as_dict() if cat.verdict else None
    c.decided_at, c.decided_by = now, sorted(set(users))
    c.bank = bank or getattr(settings, "review_bank", None) or DEFAULT_BANK
    for it in s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == c.id, ReviewItem.state == "queued")):
        it.state = "decided"
    audit.record(store, by, "review.confirmed", "review_cluster", c.id,
                 {"category": cat.name, "deciders": c.decided_by, "bank": c.bank}, session=s)


def _after_confirm(store: Store, settings, cluster_id: int, by: str) -> dict:
    from vigie.review.queue import drop_known

    out = bank_cluster(store, settings, cluster_id, by=by)
    out["dropped_known"] = drop_known(store, settings, by=by)
    return out


def bank_cluster(store: Store, settings, cluster_id: int, *, by: str = "system") -> dict:
    """Put a decided cluster's hashes in its bank (idempotent: entries merge). Sets `banked_at`."""
    from vigie.banks import service
    from vigie.banks.records import EntryData
    from vigie.errors import MediaError
    from vigie.review import media as rmedia
    from vigie.review.clock import SYSTEM

    with store.sessions() as s:
        c = s.get(ReviewCluster, cluster_id)
        if c is None or c.state != "decided":
            raise Conflict(f"cluster {cluster_id} is not decided", code="cluster_not_decided")
        items = list(s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == cluster_id,
                                                        ReviewItem.state != "known")))
        bank, verdict = c.bank, Verdict.from_dict(c.verdict)
        deciders = ",".join(c.decided_by or [])[:200]
        category = c.category
    try:
        service.get_bank(store, bank)
    except NotFound:
        service.create_bank(store, bank, description="Hashes confirmed by Vigie's review (consensus decisions).",
                            source="vigie review")
    tags = ["review", f"review:{category}"]
    note = f"review cluster {cluster_id}: {category}"
    with_media = hashes_only = 0
    for it in items:
        data = None
        if rmedia.has_media(store, it.sha256, "original"):
            try:
                data = rmedia.read_media(store, settings, it.sha256, "original")
            except Exception:  # noqa: BLE001 - the hashes alone still go in
                data = None
        if data is not None:
            try:
                res = service.add_media(store, bank, data, settings, path=f"review:{it.sha256}", verdict=verdict,
                                        tags=tags, note=note, added_by=deciders)
                if "sha256" in res.entries:
                    with_media += 1
                    continue
            except (MediaError, ValueError):
                pass
        rows = [EntryData(sig, getattr(it, sig), verdict=verdict, tags=list(tags), note=note, media_key=it.md5,
                          added_by=deciders)
                for sig in ("md5", "sha1", "sha256", "pdq") if getattr(it, sig)]
        service.import_entries(store, bank, enumerate(rows, 1), skip_invalid=True, added_by=deciders)
        hashes_only += 1
    with store.session() as s:
        c = s.get(ReviewCluster, cluster_id)
        c.banked_at = now_utc(SYSTEM)
        audit.record(store, by, "review.banked", "review_cluster", cluster_id,
                     {"bank": bank, "items": len(items), "with_media": with_media, "hashes_only": hashes_only,
                      "deciders": c.decided_by}, session=s)
    return {"bank": bank, "items": len(items), "with_media": with_media, "hashes_only": hashes_only}


def bank_pending(store: Store, settings, *, by: str = "system") -> list[int]:
    """Bank every decided cluster whose hashes did not reach its bank (a crash between the two steps)."""
    with store.sessions() as s:
        ids = list(s.scalars(select(ReviewCluster.id).where(ReviewCluster.state == "decided",
                                                            ReviewCluster.banked_at.is_(None))))
    for cid in ids:
        bank_cluster(store, settings, cid, by=by)
    return ids


def decisions_of(store: Store, cluster_id: int) -> list[dict]:
    """Every decision on a cluster, superseded ones included (a supervisor's view)."""
    with store.sessions() as s:
        return [{"user": d.user, "role": d.role, "category": d.category, "note": d.note, "bank": d.bank,
                 "at": aware(d.at).isoformat(), "superseded": d.superseded}
                for d in s.scalars(select(ReviewDecision).where(ReviewDecision.cluster_id == cluster_id)
                                   .order_by(ReviewDecision.id))]


def disputed(store: Store) -> list[dict]:
    """Clusters waiting for a supervisor, oldest first, with their decisions."""
    with store.sessions() as s:
        ids = list(s.scalars(select(ReviewCluster.id).where(ReviewCluster.state == "disputed")
                             .order_by(ReviewCluster.created_at, ReviewCluster.id)))
    return [{"cluster": cid, "decisions": decisions_of(store, cid)} for cid in ids]
