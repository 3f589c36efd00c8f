"""Match hashes against the banks: the bank-aware layer over the indexes of `vigie.index`.

The indexes know only ids and bits. This layer keeps them in step with the store
(incrementally: only entries added since the last refresh are indexed; the saved index
is reloaded memory-mapped at start), and turns raw hits into matches a person can act
on, applying the store's hygiene rules at answer time so that they hold even for an
index that is a little behind:

* a removed (tombstoned), disabled or quarantined entry never matches;
* a disabled bank never matches, and `banks=` narrows the search;
* a bank's own PDQ threshold, where set, replaces the query's;
* an entry of a *known_good* bank (NIST NSRL: operating-system and application files) is never a match;
  scans use those banks to skip files before decoding them (`vigie.banks.known_good`);
* a match in a *suppression* bank (known false positives) cancels the other banks'
  matches of the same signal type for that query; they are reported as suppressed;
* with `record=True`, matches are counted per entry per day, and an entry that
  suddenly matches far more than its history (a flood) is quarantined, with the reason.

PDQ ids in the index are `entry_id * 16 + variant code`, so one entry can carry its
variant hashes (de-bordered, crops) and a match says which one matched.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
from sqlalchemy import func, select

from vigie.banks.verdict import Verdict
from vigie.hashing import HashRecord
from vigie.index import FLAT_MAX, ExactIndex, FlatIndex, MIHIndex, PdqIndex, hex_to_hashes, make_pdq_index
from vigie.settings import Settings
from vigie.signals import get_signal
from vigie.store.db import Store
from vigie.store.models import Bank, Entry, EntryVariant, MatchCount, utcnow

SLOTS = 16
#: Entry-side variant kinds and their code in the index id.
ENTRY_VARIANTS = ("original", "unbordered", "crop95", "crop90", "crop80", "region", "unbordered-crop95",
                  "unbordered-crop90", "unbordered-crop80")
CODE = {k: i for i, k in enumerate(ENTRY_VARIANTS)}
#: Slot of the frame hashes of a vPDQ entry (a video in a bank).
FRAME_SLOT = SLOTS - 1
EXACT_SIGNALS = ("md5", "sha1", "sha256")


def bank_quality_floor(bank: Bank, default: int) -> int:
    """The PDQ quality a query needs to match this bank by PDQ: the bank's own floor (`meta`), else the
    query's. A bank of flat, low-detail material (logos, screenshots) may lower it; HMA's default is 50."""
    own = (bank.meta or {}).get("pdq_quality_floor")
    return default if own is None else int(own)


@dataclass
class Query:
    """What one input (a file or a hash) offers to match: exact digests and PDQ hashes with their kinds."""

    input: str
    exact: dict[str, str] = field(default_factory=dict)
    pdq: list[tuple[str, str]] = field(default_factory=list)
    pdq_quality: int | None = None

    @classmethod
    def from_record(cls, rec: HashRecord) -> Query:
        q = cls(rec.path, {s: getattr(rec, s) for s in EXACT_SIGNALS if getattr(rec, s)}, [], rec.pdq_quality)
        if rec.pdq:
            q.pdq.append(("original", rec.pdq))
            q.pdq += [(v["kind"], v["pdq"]) for v in rec.pdq_variants or []]
        return q

    @classmethod
    def from_hash(cls, value: str, signal: str | None = None) -> Query:
        """A bare hash: the signal is given, or told from its length (64 hex: PDQ, the common case)."""
        v = value.strip()
        if signal is None:
            signal = {32: "md5", 40: "sha1", 64: "pdq"}.get(len(v.lower().removeprefix("0x")), "unknown")
        sig = get_signal(signal)
        norm = sig.normalise(v)
        if sig.name == "pdq":
            return cls(value, {}, [("original", norm)])
        return cls(value, {sig.name: norm})


@dataclass
class Match:
    bank: str
    bank_kind: str
    entry_id: int
    signal: str
    value: str
    distance: int
    verdict: Verdict | None
    external_id: str | None = None
    query_variant: str | None = None
    entry_variant: str | None = None
    #: For a video: start and end time (seconds) of the frames that matched.
    span: tuple[float, float] | None = None

    @property
    def category(self) -> str | None:
        v = self.verdict
        if v is None:
            return None
        if v.source_scheme and v.source_label:
            return f"{v.source_scheme}:{v.source_label}"
        return v.legality if v.legality != "unknown" else None

    def as_dict(self) -> dict:
        d = {"bank": self.bank, "entry_id": self.entry_id, "signal": self.signal, "category": self.category,
             "distance": self.distance}
        if self.verdict is not None:
            d["labels"] = {k: v for k, v in self.verdict.labels().items() if v is not None}
        if self.signal in ("pdq", "vpdq"):
            d["query_variant"] = self.query_variant
            d["entry_variant"] = self.entry_variant
        if self.span is not None:
            d["start"], d["end"] = self.span
        return d


@dataclass
class MatchResult:
    input: str
    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)
    low_quality: bool = False

    def as_dict(self) -> dict:
        d = {"input": self.input, "matches": [m.as_dict() for m in self.matches]}
        if self.suppressed:
            d["suppressed"] = [m.as_dict() for m in self.suppressed]
        if self.low_quality:
            d["note"] = "PDQ quality below the floor: matched on exact hashes only"
        return d


class Matcher:
    """Holds the indexes for one store. Thread-safe for matching; `refresh()` picks up new entries."""

    def __init__(self, store: Store, settings: Settings | None = None):
        self.store = store
        self.settings = settings or store.settings
        self._lock = threading.RLock()
        self._pdq: PdqIndex | None = None
        self._exact: dict[str, ExactIndex] = {}
        self._last_id = 0
        self._loaded = False
        self._refreshed = float("-inf")

    # ---- keeping the indexes in step with the store -------------------------------------------

    @property
    def _dir(self):
        return self.settings.index_dir / self.store.index_dir.name

    def refresh(self, *, save: bool = True, max_age: float = 0.0) -> int:
        """Index entries added since the last refresh; returns how many hashes were added.

        `max_age`: skip the store round trip when the last refresh is younger than that many seconds
        (a busy API refreshes once a second, not on every request; removals never wait, see the module
        docstring)."""
        import time

        if max_age and time.monotonic() - self._refreshed < max_age:
            return 0
        with self._lock:
            self._refreshed = time.monotonic()
            if not self._loaded:
                self._load()
            with self.store.sessions() as s:
                top = s.scalar(select(func.max(Entry.id))) or 0
                if top < self._last_id:  # the store was replaced under us: start again
                    self._reset()
                added = self._add_since(s)
            if save and added:
                self.save()
            return added

    def _reset(self) -> None:
        self._pdq = None
        self._exact = {}
        self._last_id = 0

    def _load(self) -> None:
        import json

        self._loaded = True
        d = self._dir
        state = d / "state.json"
        if not state.exists():
            return
        try:
            meta = json.loads(state.read_text())
            if (d / "pdq").exists():
                self._pdq = PdqIndex.load(d / "pdq", mmap=True)
            for sig in EXACT_SIGNALS:
                if (d / sig).exists():
                    self._exact[sig] = ExactIndex.load(d / sig, mmap=True)
            self._last_id = int(meta["last_entry_id"])
        except Exception:  # noqa: BLE001 - a damaged index is rebuilt, never trusted
            self._reset()

    def save(self) -> None:
        import json

        with self._lock:
            d = self._dir
            d.mkdir(parents=True, exist_ok=True)
            if self._pdq is not None:
                self._pdq.save(d / "pdq")
            for sig, idx in self._exact.items():
                idx.save(d / sig)
            (d / "state.json").write_text(json.dumps({"last_entry_id": self._last_id}))

    def _add_since(self, s, batch: int = 200_000) -> int:
        added = 0
        while True:
            # Removed entries are indexed too (liveness is checked at answer time), so that a restored entry
            # matches again without a rebuild.
            rows = s.execute(select(Entry.id, Entry.signal, Entry.value, Entry.payload)
                             .where(Entry.id > self._last_id)
                             .order_by(Entry.id).limit(batch)).all()
            if not rows:
                return added
            ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
            sigs = [r[1] for r in rows]
            vals = [r[2] for r in rows]
            lo, hi = int(ids[0]), int(ids[-1])
            pdq_ids = [i for i, sg in zip(ids.tolist(), sigs) if sg == "pdq"]
            pdq_vals = [v for v, sg in zip(vals, sigs) if sg == "pdq"]
            var = s.execute(select(EntryVariant.entry_id, EntryVariant.kind, EntryVariant.value)
                            .where(EntryVariant.entry_id.between(lo, hi))).all()
            pdq_codes = [i * SLOTS for i in pdq_ids] + [e * SLOTS + CODE.get(k, SLOTS - 2) for e, k, _ in var]
            pdq_vals += [v for _, _, v in var]
            for r in rows:
                if r[1] == "vpdq" and r[3]:
                    frames = _video_frames(r[3])
                    pdq_codes += [r[0] * SLOTS + FRAME_SLOT] * len(frames)
                    pdq_vals += frames
            if pdq_codes:
                if self._pdq is None:
                    self._pdq = make_pdq_index(len(pdq_codes))
                self._pdq.add(np.asarray(pdq_codes, np.int64), hex_to_hashes(pdq_vals))
                added += len(pdq_codes)
                if isinstance(self._pdq, FlatIndex) and len(self._pdq) > FLAT_MAX:
                    grown = MIHIndex()  # the bank outgrew exhaustive search
                    grown.add(self._pdq.ids, self._pdq.hashes())
                    self._pdq = grown
            for sig in EXACT_SIGNALS:
                sel = [(i, v) for i, sg, v in zip(ids.tolist(), sigs, vals) if sg == sig]
                if sel:
                    idx = self._exact.get(sig) or ExactIndex(get_signal(sig).hex_length // 2)
                    self._exact[sig] = idx
                    idx.add(np.asarray([i for i, _ in sel], np.int64), [bytes.fromhex(v) for _, v in sel])
                    added += len(sel)
            self._last_id = hi

    # ---- matching ---------------------------------------------------------------------------------

    def match(self, queries: list[Query], *, banks: list[str] | None = None, threshold: int | None = None,
              quality_floor: int | None = None, record: bool = False) -> list[MatchResult]:
        """Match each query; one MatchResult per query, matches nearest first."""
        with self._lock:
            if not self._loaded or record:
                self.refresh(save=False)
            thr = self.settings.pdq_threshold if threshold is None else threshold
            floor = self.settings.pdq_quality_floor if quality_floor is None else quality_floor
            with self.store.sessions() as s:
                bank_rows = {b.id: b for b in s.scalars(select(Bank))}
                wanted = None
                if banks:
                    by_name = {b.name: b.id for b in bank_rows.values()}
                    from vigie.errors import NotFound

                    missing = [n for n in banks if n not in by_name]
                    if missing:
                        raise NotFound(f"no bank named {', '.join(map(repr, missing))}", code="bank_not_found")
                    wanted = {by_name[n] for n in banks}
                radius = max([thr] + [b.pdq_threshold for b in bank_rows.values() if b.pdq_threshold is not None])
                floors = {b.id: bank_quality_floor(b, floor) for b in bank_rows.values()}
                raw = self._raw_hits(queries, radius, min([floor, *floors.values()]))
                entry_ids = {eid for hits in raw for (_, eid, *_rest) in hits}
                entries = self._entries(s, entry_ids)
                results = []
                for q, hits in zip(queries, raw):
                    res = MatchResult(q.input, low_quality=bool(q.pdq) and q.pdq_quality is not None
                                      and q.pdq_quality < floor)
                    found: dict[tuple[int, str], Match] = {}
                    for signal, eid, dist, qkind, ekind in hits:
                        e = entries.get(eid)
                        if e is None or not e.live:
                            continue
                        b = bank_rows[e.bank_id]
                        if b.kind == "known_good":
                            continue  # a known-good file is not a match (scans skip it: vigie.banks.known_good)
                        if not b.enabled or (wanted is not None and b.id not in wanted and b.kind != "suppression"):
                            continue
                        if signal == "pdq" and dist > (b.pdq_threshold if b.pdq_threshold is not None else thr):
                            continue
                        if signal == "pdq" and q.pdq_quality is not None and q.pdq_quality < floors[b.id]:
                            continue
                        if e.signal == "vpdq":
                            signal = "vpdq"  # a picture that is a frame of a known video
                        m = Match(b.name, b.kind, e.id, signal, e.value, dist,
                                  Verdict.from_dict(e.verdict) or Verdict.from_dict(b.default_verdict),
                                  e.external_id, qkind, ekind)
                        key = (e.id, signal)
                        if key not in found or dist < found[key].distance:
                            found[key] = m
                    ms = sorted(found.values(), key=lambda m: (m.distance, m.signal == "pdq", m.bank, m.entry_id))
                    cancelled = {m.signal for m in ms if m.bank_kind == "suppression"}
                    res.matches = [m for m in ms if m.bank_kind != "suppression" and m.signal not in cancelled]
                    res.suppressed = [m for m in ms if m.bank_kind != "suppression" and m.signal in cancelled]
                    results.append(res)
            if record:
                self._record([m for r in results for m in r.matches])
            return results

    def match_video(self, frames: list[tuple[float, str, int]], *, banks: list[str] | None = None,
                    threshold: int | None = None, quality_floor: int = 50) -> list[Match]:
        """Matches of a video, each with the time span (start, end) of the frames that matched.

        Two rules (docs/video.md): a video matches a known *picture* when any of its frames
        does (PDQ within the threshold); it matches a known *video* (a vPDQ entry) by Meta's
        rule on the share of matching frames (`vpdq.match_vpdq`: at least 80 % of this video's
        distinct frames found in the entry). `frames` are (timestamp, PDQ hex, quality) of
        the sampled frames; frames below `quality_floor` (fades, black) are not matched.
        """
        from vigie.signals import vpdq

        good = [(ts, h) for ts, h, q in frames if q >= quality_floor]
        if not good:
            return []
        queries = [Query(f"frame@{ts:.3f}", {}, [("original", h)], None) for ts, h in good]
        per_entry: dict[int, Match] = {}
        videos: dict[int, Match] = {}
        for (ts, _), res in zip(good, self.match(queries, banks=banks, threshold=threshold)):
            for m in res.matches:
                if m.signal == "vpdq":
                    videos.setdefault(m.entry_id, m)
                    continue
                cur = per_entry.get(m.entry_id)
                if cur is None:
                    m.query_variant, m.span = "frame", (ts, ts)
                    per_entry[m.entry_id] = m
                else:
                    cur.distance = min(cur.distance, m.distance)
                    cur.span = (min(cur.span[0], ts), max(cur.span[1], ts))
        if videos:
            query = [vpdq.VpdqFeature(i, q, h, ts) for i, (ts, h, q) in enumerate(frames)]
            with self.store.sessions() as s:
                payloads = dict(s.execute(select(Entry.id, Entry.payload).where(Entry.id.in_(list(videos)))).all())
            for eid, m in videos.items():
                vm = vpdq.match_vpdq(query, vpdq.parse_features(payloads.get(eid) or ""),
                                     distance=threshold if threshold is not None else self.settings.pdq_threshold)
                if vm.matched:
                    m.distance = 100 - int(min(vm.query_pct, vm.target_pct))
                    m.query_variant, m.entry_variant = "video", "video"
                    m.span = (vm.start, vm.end)
                    per_entry[eid] = m
        return sorted(per_entry.values(), key=lambda m: (m.signal != "vpdq", m.distance, m.bank, m.entry_id))

    def _raw_hits(self, queries: list[Query], radius: int, floor: int) -> list[list[tuple]]:
        """(signal, entry id, distance, query variant, entry variant) per query, unfiltered."""
        out: list[list[tuple]] = [[] for _ in queries]
        for sig in EXACT_SIGNALS:
            idx = self._exact.get(sig)
            pos = [i for i, q in enumerate(queries) if sig in q.exact]
            if idx is None or not pos:
                continue
            found = idx.lookup([bytes.fromhex(queries[i].exact[sig]) for i in pos])
            for i, ids in zip(pos, found):
                out[i] += [(sig, int(eid), 0, None, None) for eid in ids]
        if self._pdq is None:
            return out
        flat, owner, kinds = [], [], []
        for i, q in enumerate(queries):
            if q.pdq and not (q.pdq_quality is not None and q.pdq_quality < floor):
                for kind, value in q.pdq:
                    flat.append(value)
                    owner.append(i)
                    kinds.append(kind)
        if not flat:
            return out
        hits = self._pdq.search(hex_to_hashes(flat), radius)
        for i, kind, matches in zip(owner, kinds, hits):
            for code, dist in matches:
                eid, slot = divmod(int(code), SLOTS)
                ekind = (ENTRY_VARIANTS[slot] if slot < len(ENTRY_VARIANTS) else
                         "frame" if slot == FRAME_SLOT else "variant")
                out[i].append(("pdq", eid, int(dist), kind, ekind))
        return out

    @staticmethod
    def _entries(s, ids: set[int]) -> dict[int, Entry]:
        out: dict[int, Entry] = {}
        ids_l = sorted(ids)
        for i in range(0, len(ids_l), 900):
            for e in s.scalars(select(Entry).where(Entry.id.in_(ids_l[i:i + 900]))):
                out[e.id] = e
        return out

    def _record(self, matches: list[Match]) -> None:
        """Count today's matches per entry and quarantine floods (see the module docstring).

        One statement adds a batch's counts (an upsert that adds to the stored count in the database, so two
        processes counting at once add up on both stores: no read-modify-write), and one grouped query reads
        the 30 days before for every entry of the batch."""
        if not matches:
            return
        today = date.today()
        per_entry: dict[int, int] = {}
        for m in matches:
            per_entry[m.entry_id] = per_entry.get(m.entry_id, 0) + 1
        st = self.settings
        if self.store.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        since = today - timedelta(days=30)
        items = sorted(per_entry.items())  # one order for every process: no deadlock between two upserts
        with self.store.session() as s:
            for i in range(0, len(items), 1000):  # bounded statements (SQLite's variable limit)
                chunk = items[i:i + 1000]
                ins = insert(MatchCount).values([{"entry_id": eid, "day": today, "count": n} for eid, n in chunk])
                stmt = ins.on_conflict_do_update(index_elements=[MatchCount.entry_id, MatchCount.day],
                                                 set_={"count": MatchCount.count + ins.excluded.count}
                                                 ).returning(MatchCount.entry_id, MatchCount.count)
                # no flood at or below flood_min: those are not looked at further
                high = {eid: n for eid, n in s.execute(stmt) if n > st.flood_min}
                if not high:
                    continue
                past = dict(s.execute(select(MatchCount.entry_id, func.sum(MatchCount.count))
                                      .where(MatchCount.entry_id.in_(list(high)), MatchCount.day >= since,
                                             MatchCount.day < today).group_by(MatchCount.entry_id)).all())
                for eid, n in high.items():
                    avg = (past.get(eid) or 0) / 30.0
                    if n > max(st.flood_min, st.flood_factor * avg):
                        e = s.get(Entry, eid)
                        if e is not None and e.quarantined_at is None:
                            e.quarantined_at = utcnow()
                            e.quarantine_reason = (f"flood: {n} matches on {today.isoformat()} against an "
                                                   f"average of {avg:.1f} a day over the 30 days before")


def _video_frames(payload: str) -> list[str]:
    """The distinct frame hashes of a vPDQ value worth indexing (quality >= 50, Meta's rule)."""
    from vigie.signals.vpdq import parse_features

    try:
        feats = parse_features(payload)
    except Exception:  # noqa: BLE001 - a damaged value is skipped, never fatal
        return []
    return sorted({f.pdq_hex for f in feats if f.quality >= 50})


_SHARED_LOCK = threading.Lock()


def shared_matcher(store: Store, settings: Settings | None = None) -> Matcher:
    """The process's matcher for `store`, refreshed now (one cheap query when nothing changed): what the
    review queue and the media choke point use, so a bank change is seen by the very next check."""
    with _SHARED_LOCK:
        m = getattr(store, "_vigie_matcher", None)
        if m is None:
            m = Matcher(store, settings or store.settings)
            store._vigie_matcher = m
    m.refresh(save=False)
    return m

