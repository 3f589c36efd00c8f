"""Project VIC's VICS JSON (versions 1.1 to 2.0), read streaming and written as 2.0.

Reading follows the pitfalls of shared/design/VICS.md: both document shapes (`#Cases`,
whose cases hold `Media[]`, and `#Media` hash sets, whose `value` is the Media list) are
handled in one streaming pass, without trusting the metadata fragment: a `value` item with
a `Media` array is a case, any other object is a Media record. Memory holds one Media
record at a time (national sets hold hundreds of thousands). The version and profile come
from `odata.metadata` (1.x) or `@odata.context` (2.0); only `Category` is trusted as a
verdict (never `IsPrecategorized` nor the header counts); booleans, numbers and dates are
read in every spelling seen.

Each Media becomes one entry per hash it carries (MD5, SHA1, and SHA256/PDQ as fields or
in `AlternativeHashes`), sharing `media_key` (the MD5) and `external_id` (the MediaID).
Every field Vigie does not use stays in `extra`, so an export gives it back. Row errors
carry the 1-based Media number (counted over the whole file) as their `line`.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import BinaryIO

import ijson

from vigie import __version__
from vigie.banks.formats._common import format_date, looks_binary, parse_bool, parse_date, peek
from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import Verdict, from_label
from vigie.errors import FormatError, InvalidHash, RowError, UsageError
from vigie.signals import get_signal

METADATA_KEYS = ("@odata.context", "odata.metadata")
_URL = re.compile(r"DataModels/(?P<version>\d+(?:\.\d+)*)\.xml(?:/(?P<profile>[^/#$]+))?(?:/\$metadata)?"
                  r"(?:#(?P<fragment>\w+))?", re.IGNORECASE)
CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#{fragment}"
#: Hash names in AlternativeHashes (lower case, without - and _) that become entries.
HASH_NAMES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "pdq": "pdq", "pdqhash": "pdq"}
#: Media fields Vigie reads into the entry itself (compared in lower case); all others go to `extra`.
USED = ("mediaid", "category", "md5", "sha1", "sha256", "pdq", "tags", "comments", "dateupdated",
        "vigieexternalid")
#: Case counts not copied on export (exporters disagree on what they count); TotalMediaFiles is
#: written as the number of Media.
COUNTS = ("TotalMediaFiles", "TotalPrecategorized")
#: How many media groups the writer holds open to gather entries of one media that arrive apart.
WRITE_WINDOW = 10_000
UK_LABELS = ("A", "B", "C")


def _scalar_str(v) -> str | None:
    """A JSON scalar as a string (`1.0` as "1"), or None for null and empty strings."""
    if v is None or isinstance(v, (dict, list)):
        return None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def category_verdict(raw, profile: str | None) -> Verdict | None:
    """The verdict a VICS `Category` means under `profile`; None when it is null or empty.

    US and Default profiles (and 1.x files, which name none) use the vics_us numbers; a UK
    profile's A/B/C goes through the UK scheme. Any other value is kept as it came, under
    the scheme `vics_<profile>`, so that an export to the same profile gives it back.
    """
    label = _scalar_str(raw)
    if label is None:
        return None
    p = (profile or "US").upper()
    if label.upper() in UK_LABELS:
        return from_label("uk", label.upper(), profile)
    if p in ("US", "DEFAULT"):
        try:
            return from_label("vics_us", label, profile)
        except ValueError:
            pass
    return Verdict(source_scheme=f"vics_{p.lower()}", source_profile=profile, source_label=label)


def category_label(v: Verdict | None, profile: str):
    """The `Category` to write for `v` under `profile` (an int where it is a number), or None."""
    if v is None:
        return None
    p = profile.upper()
    own = f"vics_{p.lower()}"
    if v.source_scheme == own and v.source_label is not None:
        label = v.source_label
    elif p == "UK":
        label = v.label("uk")
    elif p in ("US", "DEFAULT"):
        label = v.label("vics_us")
    else:
        label = None
    if label is None:
        return None
    return int(label) if label.isdigit() else label


def parse_metadata_url(url: str) -> dict:
    m = _URL.search(url or "")
    if not m:
        return {"version": None, "profile": None, "fragment": None}
    return {"version": m.group("version"), "profile": m.group("profile"), "fragment": m.group("fragment")}


class VicsFormat(BankFormat):
    """Options: `profile` (reading: overrides the file's; writing: the profile to write, default
    the imported one, else US), `shape` (writing: "media", the default, or "cases")."""

    name = "vics"
    extensions = (".json",)

    def __init__(self, *, signal: str | None = None, **options):
        super().__init__(signal=signal, **options)
        #: Entries the last `write` left out (tombstones, media without an MD5).
        self.skipped = 0
        self.warnings: list[str] = []

    # -- reading -------------------------------------------------------------

    def read(self, stream: BinaryIO) -> Iterator[Row]:
        head, body = peek(stream)
        if looks_binary(head):
            raise FormatError("this is not a VICS file: the content is binary, not JSON text")
        if not head.lstrip().startswith(b"{"):
            raise FormatError("this is not a VICS file: it does not start with a JSON object")
        self.bank_meta = {"version": None, "profile": self.options.get("profile"), "shape": None,
                          "metadata_key": None, "metadata_url": None, "case": {}, "cases": [],
                          "document": {}, "media": 0, "warnings": []}
        self._count = 0
        self._looked = False
        try:
            yield from self._read_document(ijson.basic_parse(body, use_float=True))
        except ijson.JSONError as exc:
            where = f"after Media #{self._count}" if self._count else "at the start"
            raise FormatError(f"VICS file is not valid JSON ({where}): {str(exc).splitlines()[0]}") from None
        finally:
            self.bank_meta["media"] = self._count

    def _read_document(self, events) -> Iterator[Row]:
        ev, _ = next(events, (None, None))
        if ev != "start_map":
            raise FormatError("this is not a VICS file: the JSON root is not an object")
        key = None
        seen_value = False
        for ev, val in events:
            if ev == "map_key":
                key = val
                continue
            if ev == "end_map":
                break
            if key == "value":
                if ev != "start_array":
                    raise FormatError("this is not a VICS file: 'value' is not a list")
                seen_value = True
                yield from self._read_value(events)
            elif key in METADATA_KEYS:
                self._metadata(key, _build(ev, val, events))
            else:
                self.bank_meta["document"][key] = _build(ev, val, events)
        if not seen_value:
            raise FormatError("this is not a VICS file: there is no 'value' list of cases or media")
        meta = self.bank_meta
        if meta["metadata_url"] is None:
            meta["warnings"].append("no odata.metadata / @odata.context: version and profile unknown")
        if meta["shape"] is None:
            meta["shape"] = "media"

    def _metadata(self, key: str, url) -> None:
        meta = self.bank_meta
        url = url if isinstance(url, str) else str(url)
        if not re.search(r"projectvic|vicsdatamodel|icmec", url, re.IGNORECASE):
            raise FormatError(f"this is not a VICS file: {key} is {url[:120]!r}, "
                              "not a Project VIC data model")
        parsed = parse_metadata_url(url)
        meta["metadata_key"], meta["metadata_url"], meta["version"] = key, url, parsed["version"]
        if meta["profile"] is None:
            # 1.x names no profile: their categories are the US numbers.
            meta["profile"] = parsed["profile"] or "US"
            meta["profile_assumed"] = parsed["profile"] is None
        frag = (parsed["fragment"] or "").lower()
        meta["declared_shape"] = {"cases": "cases", "media": "media"}.get(frag)
        if self._count:
            meta["warnings"].append(f"{key} comes after the media: they were read with profile "
                                    f"{self._profile()}")

    def _profile(self) -> str:
        return self.bank_meta["profile"] or "US"

    def _set_shape(self, shape: str) -> None:
        meta = self.bank_meta
        if meta["shape"] is None:
            meta["shape"] = shape
            declared = meta.get("declared_shape")
            if declared and declared != shape:
                meta["warnings"].append(f"the metadata says #{declared.capitalize()} "
                                        f"but the file holds {shape}")
        elif meta["shape"] != shape:
            meta["shape"] = "mixed"

    def _read_value(self, events) -> Iterator[Row]:
        for ev, val in events:
            if ev == "end_array":
                return
            if ev != "start_map":
                _build(ev, val, events)
                self._count += 1
                yield self._count, RowError(self._count, "bad_record",
                                            f"item {self._count} of 'value' is not an object")
                continue
            fields: dict = {}
            is_case = False
            for ev2, key in events:
                if ev2 == "end_map":
                    break
                ev3, val3 = next(events)
                if key == "Media" and ev3 == "start_array":
                    is_case = True
                    self._set_shape("cases")
                    yield from self._read_media_array(events)
                else:
                    fields[key] = _build(ev3, val3, events)
            if is_case:
                fields.pop("Media", None)
                self.bank_meta["cases"].append(fields)
                if len(self.bank_meta["cases"]) == 1:
                    self.bank_meta["case"] = fields
            else:
                self._set_shape("media")
                self._count += 1
                yield from self._media(self._count, fields)

    def _read_media_array(self, events) -> Iterator[Row]:
        for ev, val in events:
            if ev == "end_array":
                return
            rec = _build(ev, val, events)
            self._count += 1
            if not isinstance(rec, dict):
                yield self._count, RowError(self._count, "bad_record",
                                            f"Media #{self._count} is not an object")
                continue
            yield from self._media(self._count, rec)

    def _media(self, n: int, rec: dict) -> Iterator[Row]:
        if not self._looked:
            self._looked = True
            if self.bank_meta["metadata_url"] is None and not any(
                    k.lower() in ("md5", "sha1", "mediaid", "alternativehashes") for k in rec):
                raise FormatError("this is not a VICS file: no metadata URL and the first record has no "
                                  "MD5, SHA1 or MediaID")
        extra = dict(rec)
        lower = {k.lower(): k for k in rec}

        def take(name: str):
            k = lower.get(name)
            return extra.pop(k) if k is not None and k in extra else None

        found: list[tuple[str, object]] = []
        for name in ("md5", "sha1", "sha256", "pdq"):
            v = take(name)
            if _scalar_str(v) is not None:
                found.append((name, v))
        alt_key = lower.get("alternativehashes")
        alts = extra.get(alt_key) if alt_key else None
        if isinstance(alts, list):
            kept = []
            for a in alts:
                hname = a.get("HashName") if isinstance(a, dict) else None
                sig = HASH_NAMES.get(re.sub(r"[-_\s]", "", str(hname or "")).lower())
                if sig and _scalar_str(a.get("HashValue")) is not None:
                    found.append((sig, a["HashValue"]))
                else:
                    kept.append(a)
            if len(kept) != len(alts):
                if kept:
                    extra[alt_key] = kept
                else:
                    del extra[alt_key]

        verdict = category_verdict(take("category"), self._profile())
        sg_key = lower.get("selfgenerated")
        if verdict is not None and sg_key:
            try:
                if parse_bool(rec[sg_key]):
                    verdict = replace(verdict, flags=(*verdict.flags, "self_generated"))
            except ValueError:
                pass
        media_id = _scalar_str(take("mediaid"))
        vigie_id = _scalar_str(take("vigieexternalid"))
        external_id = vigie_id or media_id
        tags_raw = take("tags")
        if isinstance(tags_raw, list):
            tags = [str(t).strip() for t in tags_raw if str(t).strip()]
        else:
            tags = [t.strip() for t in re.split(r"[,;]", _scalar_str(tags_raw) or "") if t.strip()]
        note = _scalar_str(take("comments"))
        added_at = None
        date_key = lower.get("dateupdated")
        if date_key and rec.get(date_key) not in (None, ""):
            try:
                added_at = parse_date(rec[date_key])
                del extra[date_key]
            except ValueError:
                pass  # kept as it came, in extra
        elif date_key:
            del extra[date_key]

        if not found:
            yield n, RowError(n, "missing_value", f"Media #{n} has no MD5, SHA1, SHA256 or PDQ")
            return
        entries: list[tuple[str, str]] = []
        for sig, raw in found:
            try:
                value = get_signal(sig).normalise(str(raw))
            except InvalidHash as exc:
                yield n, RowError(n, "invalid_hash", f"Media #{n}: {exc.message}")
                continue
            if (sig, value) not in entries:
                entries.append((sig, value))
        if not entries:
            return
        key = next((v for s, v in entries if s == "md5"), None) or entries[0][1]
        for sig, value in entries:
            yield n, EntryData(signal=sig, value=value, verdict=verdict, tags=list(tags),
                               external_id=external_id, note=note, media_key=key, extra=dict(extra),
                               added_at=added_at)

    # -- writing -------------------------------------------------------------

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """Write VICS 2.0. Entries sharing a `media_key` become one Media (they should arrive
        close together, as readers and the store give them; up to WRITE_WINDOW media are held
        open). A Media needs an MD5: groups without one are left out and counted in `skipped`,
        as are tombstones. Returns the number of entries written."""
        meta = bank.extra or {}
        profile = self.options.get("profile") or meta.get("profile") or "US"
        shape = self.options.get("shape", "media")
        if shape not in ("media", "cases"):
            raise UsageError(f"the VICS shape must be 'media' or 'cases', not {shape!r}")
        self.skipped, self.warnings = 0, []
        out = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        try:
            head = {"@odata.context": CONTEXT.format(profile=profile,
                                                     fragment="Cases" if shape == "cases" else "Media")}
            for k, v in (meta.get("document") or {}).items():
                if "count" not in k.lower() and k not in METADATA_KEYS:
                    head[k] = v
            out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "value": [')
            if shape == "cases":
                case = {k: v for k, v in (meta.get("case") or {}).items() if k not in COUNTS and k != "Media"}
                case.setdefault("CaseID", str(uuid.uuid4()))
                case.setdefault("CaseNumber", bank.name)
                case.setdefault("SourceApplicationName", "Vigie")
                if case.get("SourceApplicationName") == "Vigie":
                    case.setdefault("SourceApplicationVersion", __version__)
                out.write("\n  " + json.dumps(case, ensure_ascii=False)[:-1]
                          + (", " if case else "") + '"Media": [')
            written, media = self._write_media(entries, out, profile)
            if shape == "cases":
                out.write(f'\n  ], "TotalMediaFiles": {media}}}')
            out.write("\n]}\n")
            out.flush()
            return written
        finally:
            out.detach()

    def _write_media(self, entries: Iterable[EntryData], out, profile: str) -> tuple[int, int]:
        groups: OrderedDict = OrderedDict()
        state = {"written": 0, "media": 0, "next_id": 1, "used": set(), "done": set()}
        loose = 0
        for e in entries:
            if e.removed:
                self.skipped += 1
                continue
            if e.media_key:
                key = ("k", e.media_key)
                if key in state["done"] and key not in groups:
                    self.warnings.append(f"media {e.media_key} arrived apart from its other hashes: "
                                         "written as a second Media")
            else:
                loose += 1
                key = ("loose", loose)
            groups.setdefault(key, []).append(e)
            if len(groups) > WRITE_WINDOW:
                k, g = groups.popitem(last=False)
                self._emit(k, g, out, profile, state)
        while groups:
            k, g = groups.popitem(last=False)
            self._emit(k, g, out, profile, state)
        return state["written"], state["media"]

    def _emit(self, key, group: list[EntryData], out, profile: str, state: dict) -> None:
        if key[0] == "k":
            state["done"].add(key)
        md5s = [e for e in group if e.signal == "md5"]
        if not md5s:
            self.skipped += len(group)
            self.warnings.append(f"media {group[0].media_key or group[0].value} has no MD5: left out "
                                 "(a VICS Media needs one)")
            return
        lead = md5s[0]
        extra: dict = {}
        for e in group:
            for k, v in (e.extra or {}).items():
                extra.setdefault(k, v)
        media_id, vigie_id = self._media_id(lead.external_id, state)
        m: dict = {"MediaID": media_id}
        cat = category_label(lead.verdict, profile)
        if cat is not None:
            m["Category"] = cat
        m["MD5"] = lead.value.upper()
        alts: list = []
        sha1_done = False
        for e in group:
            if e is lead:
                continue
            if e.signal == "sha1" and not sha1_done:
                m["SHA1"] = e.value.upper()
                sha1_done = True
            else:
                name = {"md5": "MD5", "sha1": "SHA1", "sha256": "SHA256", "pdq": "PDQ"}[e.signal]
                alts.append({"MD5": m["MD5"], "HashName": name,
                             "HashValue": e.value if e.signal == "pdq" else e.value.upper()})
        for k, v in extra.items():
            if k.lower() in USED or k in m:
                continue
            if k.lower() == "alternativehashes" and isinstance(v, list):
                alts = [*v, *alts]
                continue
            m[k] = v
        if lead.tags:
            m["Tags"] = ",".join(lead.tags)
        if lead.note:
            m["Comments"] = lead.note
        if lead.added_at:
            m["DateUpdated"] = format_date(lead.added_at)
        if alts:
            m["AlternativeHashes"] = alts
        if vigie_id is not None:
            m["VigieExternalId"] = vigie_id
        out.write(",\n    " if state["media"] else "\n    ")
        out.write(json.dumps(m, ensure_ascii=False, default=str))
        state["media"] += 1
        state["written"] += len(group)

    @staticmethod
    def _media_id(external_id: str | None, state: dict) -> tuple[int, str | None]:
        """MediaID: the external id where it is a number not yet used in this file, else the next
        free running number; an external id that cannot be the MediaID goes in VigieExternalId."""
        used = state["used"]
        if external_id is not None and external_id.isdigit() and int(external_id) not in used \
                and str(int(external_id)) == external_id:
            used.add(int(external_id))
            return int(external_id), None
        while state["next_id"] in used:
            state["next_id"] += 1
        mid = state["next_id"]
        used.add(mid)
        return mid, external_id


def _build(ev: str, val, events):
    """The whole JSON value that starts with event `ev`, consuming its events."""
    if ev not in ("start_map", "start_array"):
        return val
    builder = ijson.ObjectBuilder()
    builder.event(ev, val)
    depth = 1
    for ev2, val2 in events:
        builder.event(ev2, val2)
        if ev2 in ("start_map", "start_array"):
            depth += 1
        elif ev2 in ("end_map", "end_array"):
            depth -= 1
            if depth == 0:
                break
    return builder.value
