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
SHA-256, PDQ, and a video's vPDQ frames) go into the chosen bank with the *decided* category's
verdict on each entry (never the bank's default) and the names of the deciders, **in the same
transaction** as the decision, with a note of the bank change (vigie.banks.changes): a crash can
never leave a cluster decided and its hashes in no bank. Then, after the commit, the entry
variants (crops, de-bordered) are made from the encrypted original while it is kept
(`enrich`; `variants_at` says it was done, and vigie.repair does it after a crash), and the
re-match (vigie.rematch) takes out of the queue waiting items that the bank now knows.

The bank is the one given with the confirming decision, else the latest one given with a decision
of the same category (a superseded one included), else `review_bank` (default "review-confirmed",
created when missing, open to decisions). Analysts decide only into banks open to review
decisions (`Bank.review_target`): imported, partner and published banks are closed unless an
admin opens one (`banks.service.set_review_target`, audited); a decision naming a closed bank is
refused with `bank_closed`.

Labels per item: a decision may label some items of the cluster differently from its category
(`item_categories={item_id: category}`, classifying categories only); every other item takes the decision's
category, so a decision without them is a decision for every item. Consensus is reached *per item*: each item
needs that many different people agreeing on its category, and two live decisions giving one item different
categories make the cluster disputed. The cluster is confirmed when every item of it has its consensus; the
cluster's category is then the one most of its items got, and each item's entries in the bank carry the item's
own decided verdict. Annotations per item (`item_annotations={item_id: [facet, ...]}`, Coop-style facets from
`ANNOTATIONS`) are stored with the decision; the annotations of all live decisions are joined (one analyst
noticing a picture is viral is enough) and go into the banked verdict's flags.

Consensus is atomic on both stores: the cluster is locked for the decision's transaction
(`SELECT ... FOR UPDATE` on PostgreSQL; on SQLite the write transaction starts with BEGIN
IMMEDIATE), so two analysts deciding at the same instant give the outcome of one order or the other.
Every step is in the audit trail.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from sqlalchemy import select

from vigie import audit
from vigie.banks.verdict import Verdict, parse_verdict
from vigie.errors import Conflict, NotFound, UsageError
from vigie.review.clock import Clock, aware, now_utc
from vigie.store.db import Store
from vigie.store.models import Bank
from vigie.store.review_models import ReviewCluster, ReviewDecision, ReviewItem

DEFAULT_BANK = "review-confirmed"

#: Annotations an analyst may add to an item (after ROOST Coop): carried as flags of the banked verdict.
ANNOTATIONS: dict[str, str] = {
    "self_production": "Possible self-production",
    "ai_generated": "AI-generated",
    "infant": "Infant or toddler",
    "viral": "Viral (widely shared)",
}


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


class BankClosed(Conflict):
    code = "bank_closed"
    http_status = 409


def _check_bank(store: Store, bank: str | None, settings=None) -> None:
    """The bank a decision names (or the default review bank) must exist, or be the default one that Vigie
    creates, and be open to review decisions."""
    from vigie.banks.service import get_bank

    default = (getattr(settings, "review_bank", None) if settings is not None else None) or DEFAULT_BANK
    name = bank or default
    try:
        info = get_bank(store, name)  # NotFound bank_not_found before anything is written
    except NotFound:
        if bank is None or bank == default:
            return  # the default review bank is created, open to decisions, when the first cluster is banked
        raise
    if not info.review_target:
        raise BankClosed(f"bank {name!r} is not open to review decisions (imported, partner and published banks "
                         "are closed; an admin can open one with `vigie bank review-target`)")


def _per_item(settings, item_categories: dict | None, item_annotations: dict | None) -> dict | None:
    """The labels and annotations per item of one decision, checked, as stored (keys: item ids as text)."""
    labels: dict[str, str] = {}
    for item_id, name in (item_categories or {}).items():
        labels[str(int(item_id))] = _category(settings, name, classifying=True).name
    notes: dict[str, list[str]] = {}
    for item_id, facets in (item_annotations or {}).items():
        facets = sorted(set(facets or ()))
        bad = [f for f in facets if f not in ANNOTATIONS]
        if bad:
            raise UsageError(f"unknown annotation {bad[0]!r} (known: {', '.join(ANNOTATIONS)})",
                             code="bad_annotation")
        if facets:
            notes[str(int(item_id))] = facets
    if not labels and not notes:
        return None
    return {"categories": labels, "annotations": notes}


def _queued_ids(s, cluster_id: int, per_item: dict | None) -> list[int]:
    """The items of the cluster a decision decides; labels for any other item are refused."""
    ids = list(s.scalars(select(ReviewItem.id).where(ReviewItem.cluster_id == cluster_id,
                                                     ReviewItem.state == "queued").order_by(ReviewItem.id)))
    named = {int(k) for part in (per_item or {}).values() for k in part}
    stray = sorted(named - set(ids))
    if stray:
        raise UsageError(f"item {stray[0]} is not waiting in cluster {cluster_id}", code="item_not_in_cluster")
    return ids


def _item_votes(live: list[ReviewDecision], ids: list[int], cats: dict[str, Category],
                fallback: Category) -> dict[int, Counter]:
    """Per item, the classifying categories the live decisions give it (their label for it, else their category).
    Labels for items no longer in the cluster (split out) are simply not asked for."""
    out: dict[int, Counter] = {i: Counter() for i in ids}
    for d in live:
        labels = (d.per_item or {}).get("categories") or {}
        for i in ids:
            name = labels.get(str(i), d.category)
            if cats.get(name, fallback).classifies:
                out[i][name] += 1
    return out


def _annotations(live: list[ReviewDecision], i: int) -> list[str]:
    return sorted({f for d in live for f in ((d.per_item or {}).get("annotations") or {}).get(str(i), [])})


def _live(s, cluster_id: int) -> list[ReviewDecision]:
    return list(s.scalars(select(ReviewDecision).where(ReviewDecision.cluster_id == cluster_id,
                                                       ReviewDecision.superseded.is_(False))
                          .order_by(ReviewDecision.id)))


def decide(store: Store, settings, cluster_id: int, user: str, category: str, note: str | None = None, *,
           bank: str | None = None, clock: Clock | None = None, item_categories: dict | None = None,
           item_annotations: dict | None = None) -> dict:
    """An analyst's decision on a cluster; see the module docstring for consensus, labels per item and disputes.

    Returns {cluster, state, category, votes, needed, bank, banked, items}. Raises Conflict `cluster_decided`
    or `cluster_disputed` when the cluster no longer takes analysts' decisions, UsageError
    `item_not_in_cluster` for a label on an item that is not waiting in it."""
    cat = _category(settings, category)
    per_item = _per_item(settings, item_categories, item_annotations)
    _check_bank(store, bank, settings)
    needed = consensus(settings)
    cats = categories(settings)
    now = now_utc(clock)
    with store.session() as s:
        c = _open_cluster(s, cluster_id)
        if c.state == "disputed":
            raise Conflict(f"cluster {cluster_id} is disputed: a supervisor decides it", code="cluster_disputed")
        ids = _queued_ids(s, cluster_id, per_item)
        for d in _live(s, cluster_id):
            if d.user == user:
                d.superseded = True  # a person counts once: their latest decision
        s.add(ReviewDecision(cluster_id=cluster_id, user=user, role="analyst", category=cat.name, note=note,
                             bank=bank, at=now, per_item=per_item))
        s.flush()
        live = _live(s, cluster_id)
        votes = Counter(d.category for d in live if cats.get(d.category, cat).classifies)
        second = sum(1 for d in live if not cats.get(d.category, cat).classifies)
        items = _item_votes(live, ids, cats, cat)
        audit.record(store, user, "review.decision", "review_cluster", cluster_id,
                     {"category": cat.name, "note": bool(note), "bank": bank,
                      "item_labels": len((per_item or {}).get("categories", {})),
                      "item_annotations": len((per_item or {}).get("annotations", {}))}, session=s)
        confirmed = None
        split = sorted(i for i, v in items.items() if len(v) > 1)
        if split or (not ids and len(votes) > 1):
            c.state = "disputed"
            audit.record(store, user, "review.disputed", "review_cluster", cluster_id,
                         {"votes": dict(votes), "items": split}, session=s)
        elif (ids and all(v and max(v.values()) >= needed for v in items.values())) or (
                not ids and votes and max(votes.values()) >= needed):
            outcome = {i: (cats[v.most_common(1)[0][0]], _annotations(live, i)) for i, v in items.items()}
            by_items = Counter(o[0].name for o in outcome.values()) or votes
            confirmed = max(by_items, key=lambda k: (by_items[k], votes.get(k, 0)))
            # the deciders: everyone whose live decision classified an item (no item disputed: they agree)
            agree = [d for d in live if any(
                cats.get(((d.per_item or {}).get("categories") or {}).get(str(i), d.category), cat).classifies
                for i in ids)] if ids else [d for d in live if d.category == confirmed]
            earlier = s.scalars(select(ReviewDecision.bank).where(
                ReviewDecision.cluster_id == cluster_id, ReviewDecision.category == confirmed,
                ReviewDecision.bank.is_not(None)).order_by(ReviewDecision.id.desc()).limit(1)).first()
            chosen = bank or earlier
            if chosen is not None and chosen != bank:
                _check_bank(store, chosen, settings)
            _confirm(store, settings, s, c, cats[confirmed], [d.user for d in agree], chosen, now, by=user,
                     outcome=outcome)
        elif second >= needed:
            c.state = "disputed"
            audit.record(store, user, "review.disputed", "review_cluster", cluster_id,
                         {"second_opinions": second}, session=s)
        else:
            c.state = "pending_consensus"
        result = {"cluster": cluster_id, "state": c.state, "category": c.category, "votes": dict(votes),
                  "second_opinions": second, "needed": needed, "bank": c.bank,
                  "items": {i: dict(v) for i, v in items.items()}}
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
            bank: str | None = None, clock: Clock | None = None, item_categories: dict | None = None,
            item_annotations: dict | None = None) -> dict:
    """A supervisor settles a disputed cluster, or decides any waiting one, alone (the caller checks the role),
    with labels and annotations per item as in `decide`."""
    cat = _category(settings, category, classifying=True)
    per_item = _per_item(settings, item_categories, item_annotations)
    cats = categories(settings)
    _check_bank(store, bank, settings)
    now = now_utc(clock)
    with store.session() as s:
        c = _open_cluster(s, cluster_id)
        was = c.state
        ids = _queued_ids(s, cluster_id, per_item)
        d = ReviewDecision(cluster_id=cluster_id, user=supervisor, role="supervisor", category=cat.name,
                           note=note, bank=bank, at=now, per_item=per_item)
        s.add(d)
        s.flush()
        audit.record(store, supervisor, "review.resolve", "review_cluster", cluster_id,
                     {"category": cat.name, "was": was, "note": bool(note), "bank": bank,
                      "item_labels": len((per_item or {}).get("categories", {}))}, session=s)
        labels = (per_item or {}).get("categories") or {}
        outcome = {i: (cats[labels.get(str(i), cat.name)], _annotations([d], i)) for i in ids}
        _confirm(store, settings, s, c, cat, [supervisor], bank, now, by=supervisor, outcome=outcome)
        result = {"cluster": cluster_id, "state": c.state, "category": c.category, "bank": c.bank, "was": was}
    result["banked"] = _after_confirm(store, settings, cluster_id, supervisor)
    return result


def _confirm(store, settings, s, c: ReviewCluster, cat: Category, users: list[str], bank: str | None, now,
             *, by: str, outcome: dict[int, tuple[Category, list[str]]] | None = None) -> None:
    c.state, c.category, c.verdict = "decided", cat.name, cat.verdict.as_dict() if cat.verdict else None
    c.decided_at, c.decided_by = now, sorted(set(users))
    c.bank = bank or getattr(settings, "review_bank", None) or DEFAULT_BANK
    items = list(s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == c.id, ReviewItem.state == "queued")))
    for it in items:
        it.state = "decided"
        own, facets = (outcome or {}).get(it.id, (cat, []))
        it.decision = None if own.name == cat.name and not facets else {
            "category": own.name, "verdict": own.verdict.as_dict() if own.verdict else None,
            "annotations": list(facets)}
    audit.record(store, by, "review.confirmed", "review_cluster", c.id,
                 {"category": cat.name, "deciders": c.decided_by, "bank": c.bank}, session=s)
    _bank_in(store, settings, s, c, items, by=by)


def item_outcome(c: ReviewCluster, it: ReviewItem) -> tuple[str | None, Verdict | None]:
    """An item's decided category and the verdict its bank entries carry: its own label where it got one,
    else the cluster's; its annotations as the verdict's flags."""
    own = it.decision or {}
    category = own.get("category") or c.category
    verdict = Verdict.from_dict(own.get("verdict", c.verdict))
    facets = tuple(own.get("annotations") or ())
    if facets:
        verdict = replace(verdict or Verdict(), flags=(verdict.flags if verdict else ()) + facets)
    return category, verdict


def _entries_of(it: ReviewItem, verdict: Verdict | None, tags: list[str], note: str, deciders: str) -> list:
    from vigie.banks.records import EntryData

    rows = [EntryData(sig, getattr(it, sig), verdict=verdict, tags=list(tags), note=note, media_key=it.md5,
                      added_by=deciders)
            for sig in ("md5", "sha1", "sha256", "pdq") if getattr(it, sig)]
    frames = (it.detail or {}).get("video_frames")
    if frames and (it.media_type or "").startswith("video/"):
        from vigie.signals.vpdq import VpdqFeature, to_text

        try:  # frames are kept as (seconds, pdq, quality), sampled: numbered here in their order
            value = to_text([VpdqFeature(i, int(q), str(h), round(float(ts), 3))
                             for i, (ts, h, q) in enumerate(frames)], sep=";")
            rows.append(EntryData("vpdq", value, verdict=verdict, tags=list(tags), note=note,
                                  media_key=it.md5, added_by=deciders))
        except (ValueError, TypeError):
            pass
    return rows


def _bank_in(store: Store, settings, s, c: ReviewCluster, items: list[ReviewItem], *, by: str) -> dict:
    """The hashes of a decided cluster into its bank, in the deciding transaction (see the module docstring)."""
    from vigie.banks import service
    from vigie.review.clock import SYSTEM

    if s.scalar(select(Bank.id).where(Bank.name == c.bank)) is None:
        # Two clusters confirmed at the same instant may both create the default bank: one wins, neither fails.
        from sqlalchemy.dialects import postgresql, sqlite

        ins = postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert
        s.execute(ins(Bank.__table__).values(
            name=c.bank, description="Hashes confirmed by Vigie's review (consensus decisions).",
            source="vigie review", review_target=True, meta={}, enabled=True, kind="match")
            .on_conflict_do_nothing(index_elements=["name"]))
    deciders = ",".join(c.decided_by or [])[:200]
    rows = []
    for it in items:  # each item with its own decided verdict (labels per item; the cluster's by default)
        category, verdict = item_outcome(c, it)
        rows += _entries_of(it, verdict, ["review", f"review:{category}"], f"review cluster {c.id}: {category}",
                            deciders)
    added, merged, kept_removed = service.add_hashes(s, c.bank, rows, added_by=deciders)
    c.banked_at = now_utc(SYSTEM)
    out = {"bank": c.bank, "items": len(items), "entries_added": added, "entries_merged": merged,
           "kept_removed": kept_removed}
    audit.record(store, by, "review.banked", "review_cluster", c.id, {**out, "deciders": c.decided_by}, session=s)
    return out


def _after_confirm(store: Store, settings, cluster_id: int, by: str) -> dict:
    """After the deciding transaction: entry variants from the kept media, then the re-match."""
    from vigie import rematch

    out = enrich(store, settings, cluster_id, by=by)
    try:
        rm = rematch.run(store, settings, by=by, scans=False)
        out["dropped_known"] = rm.get("queue_items", 0)
    except Exception:  # noqa: BLE001 - the change is noted: the worker and the next listing run it again
        import logging

        logging.getLogger(__name__).exception("re-match after decision on cluster %s failed", cluster_id)
        out["dropped_known"] = 0
    return out


def enrich(store: Store, settings, cluster_id: int, *, by: str = "system") -> dict:
    """Add the entry variants (crops, de-bordered) of a decided cluster's pictures while their originals are
    kept (idempotent: entries merge). Sets `variants_at`."""
    from vigie.banks import service
    from vigie.errors import MediaError
    from vigie.review import media as rmedia
    from vigie.review.clock import SYSTEM

    with store.sessions() as s:
        c = s.get(ReviewCluster, cluster_id)
        if c is None or c.state != "decided":
            raise Conflict(f"cluster {cluster_id} is not decided", code="cluster_not_decided")
        items = list(s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == cluster_id,
                                                        ReviewItem.state == "decided")))
        bank = c.bank
        deciders = ",".join(c.decided_by or [])[:200]
        outcomes = {it.id: item_outcome(c, it) for it in items}
        done = c.variants_at is not None
    out = {"bank": bank, "items": len(items), "with_media": 0, "hashes_only": 0}
    if done:
        return out
    for it in items:
        category, verdict = outcomes[it.id]
        tags = ["review", f"review:{category}"]
        note = f"review cluster {cluster_id}: {category}"
        data = None
        if (it.media_type or "").startswith("image/") and rmedia.has_media(store, it.sha256, "original"):
            try:
                data = rmedia.read_media(store, settings, it.sha256, "original")
            except Exception:  # noqa: BLE001 - the hashes are in the bank already
                data = None
        if data is not None:
            try:
                service.add_media(store, bank, data, settings, path=f"review:{it.sha256}", verdict=verdict,
                                  tags=tags, note=note, added_by=deciders)
                out["with_media"] += 1
                continue
            except (MediaError, ValueError, NotFound):
                pass
        out["hashes_only"] += 1
    with store.session() as s:
        c = s.get(ReviewCluster, cluster_id)
        c.variants_at = now_utc(SYSTEM)
        audit.record(store, by, "review.enriched", "review_cluster", cluster_id, out, session=s)
    return out


def bank_cluster(store: Store, settings, cluster_id: int, *, by: str = "system") -> dict:
    """Put a decided cluster's hashes in its bank (idempotent: entries merge), with its variants."""
    with store.session() as s:
        c = s.get(ReviewCluster, cluster_id, with_for_update=True)
        if c is None or c.state != "decided":
            raise Conflict(f"cluster {cluster_id} is not decided", code="cluster_not_decided")
        items = list(s.scalars(select(ReviewItem).where(ReviewItem.cluster_id == cluster_id,
                                                        ReviewItem.state == "decided")))
        out = _bank_in(store, settings, s, c, items, by=by)
    out.update(enrich(store, settings, cluster_id, by=by))
    return out


def bank_pending(store: Store, settings, *, by: str = "system") -> list[int]:
    """Repair after a crash: bank every decided cluster whose hashes did not reach its bank (decisions made
    before banking was part of the decision's transaction), and add the variants not yet added."""
    with store.sessions() as s:
        unbanked = list(s.scalars(select(ReviewCluster.id).where(ReviewCluster.state == "decided",
                                                                 ReviewCluster.banked_at.is_(None))))
        plain = list(s.scalars(select(ReviewCluster.id).where(ReviewCluster.state == "decided",
                                                              ReviewCluster.banked_at.is_not(None),
                                                              ReviewCluster.variants_at.is_(None))))
    for cid in unbanked:
        bank_cluster(store, settings, cid, by=by)
    for cid in plain:
        enrich(store, settings, cid, by=by)
    return unbanked + plain


def decisions_of(store: Store, cluster_id: int) -> list[dict]:
    """Every decision on a cluster, superseded ones included (a supervisor's view)."""
    with store.sessions() as s:
        return [{"user": d.user, "role": d.role, "category": d.category, "note": d.note, "bank": d.bank,
                 "at": aware(d.at).isoformat(), "superseded": d.superseded, "per_item": d.per_item}
                for d in s.scalars(select(ReviewDecision).where(ReviewDecision.cluster_id == cluster_id)
                                   .order_by(ReviewDecision.id))]


def disputed(store: Store) -> list[dict]:
    """Clusters waiting for a supervisor, oldest first, with their decisions."""
    with store.sessions() as s:
        ids = list(s.scalars(select(ReviewCluster.id).where(ReviewCluster.state == "disputed")
                             .order_by(ReviewCluster.created_at, ReviewCluster.id)))
    return [{"cluster": cid, "decisions": decisions_of(store, cid)} for cid in ids]
