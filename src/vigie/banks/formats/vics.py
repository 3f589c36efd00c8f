"""Project VIC's VICS JSON (versions 1.1 to 2.0), read streaming and written in any of them.

Reading follows the pitfalls of shared/design/VICS.md: both document shapes (`#Cases`,
whose cases hold `Media[]`, and `#Media` hash sets, whose `value` is the Media list) are
handled in one streaming pass, without trusting the metadata fragment: a `value` item with
a `Media` array is a case, any other object is a Media record. Memory holds one Media
record at a time (national sets hold hundreds of thousands). The version and profile come
from `odata.metadata` (1.x) or `@odata.context` (2.0); only `Category` is trusted as a
verdict (never `IsPrecategorized` nor the header counts); booleans, numbers and dates are
read in every spelling seen.

Each Media becomes one entry per hash it carries (MD5, SHA1, and SHA256/PDQ/vPDQ as fields
or in `AlternativeHashes`), sharing `media_key` (the MD5) and `external_id` (the MediaID).
The whole record stays in `extra` as it came, so an export gives it back unchanged (dates to
the seventh digit, `"1"` as a string, null and empty fields, hex case) with only what Vigie
changed patched in: its live hashes, its category, tags and note. Row errors carry the
1-based Media number (counted over the whole file) as their `line`.

Writing: version 2.0 with the Default profile as a `#Media` hash set unless the options or the
bank's own file say otherwise (IPED reads only `2.0.xml/Default/$metadata#Media` and 1.3
`#Media`, and wants the metadata key first and `value` second). vPDQ goes in
`AlternativeHashes` as `HashName: "vPDQ"` (no VICS tool defines a field for it; readers that
do not know the name skip it).
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
CONTEXT_1X = "http://github.com/ICMEC/ProjectVic/DataModels/{version}.xml#{fragment}"
VERSIONS = ("1.1", "1.2", "1.3", "2.0")
#: Profile names as the data model spells them, by their upper-case form.
PROFILES = {"US": "US", "UK": "UK", "DEFAULT": "Default", "CUSTOM": "CUSTOM"}
#: Hash names in AlternativeHashes (lower case, without - and _) that become entries.
HASH_NAMES = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "pdq": "pdq", "pdqhash": "pdq", "vpdq": "vpdq"}
#: The HashName Vigie writes for a signal it puts in AlternativeHashes.
ALT_NAMES = {"md5": "MD5", "sha1": "SHA1", "sha256": "SHA256", "pdq": "PDQ", "vpdq": "vPDQ"}
#: `extra` keys that other formats and sharing keep on an entry: never written into a Media.
FOREIGN = frozenset({"te_collab", "te_metadata", "te_category", "provenance", "iped"})
#: Case counts not copied on export (exporters disagree on what they count); TotalMediaFiles is
#: written as the number of Media.
COUNTS = ("TotalMediaFiles", "TotalPrecategorized")
#: How many media groups the writer holds open to gather entries of one media that arrive apart.
WRITE_WINDOW = 10_000
#: Media keys written lately that a writer remembers, to warn of a medium whose hashes arrive apart.
DONE_REMEMBERED = 10 * WRITE_WINDOW
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
    the imported one, else Default), `version` and `shape` (writing: "media", the default, or
    "cases"), `bank_category` (writing; default true)."""

    name = "vics"
    extensions = (".json",)

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
        # The whole record stays in `extra` as it came (null, "" and [] fields, strings for numbers,
        # hex case, dates to the 7th digit): the writer gives it back and patches only what changed.
        extra = dict(rec)
        lower = {k.lower(): k for k in rec}

        def get(name: str):
            k = lower.get(name)
            return rec[k] if k is not None else None

        found: list[tuple[str, object]] = []
        for name in ("md5", "sha1", "sha256", "pdq"):
            v = get(name)
            if _scalar_str(v) is not None:
                found.append((name, v))
        alts = get("alternativehashes")
        if isinstance(alts, list):
            for a in alts:
                sig = _alt_signal(a)
                if sig and _scalar_str(a.get("HashValue")) is not None:
                    found.append((sig, a["HashValue"]))

        verdict = category_verdict(get("category"), self._profile())
        sg_key = lower.get("selfgenerated")
        if verdict is not None and sg_key:
            try:
                if parse_bool(rec[sg_key]):
                    verdict = replace(verdict, flags=(*verdict.flags, "self_generated"))
            except ValueError:
                pass
        external_id = _scalar_str(get("vigieexternalid")) or _scalar_str(get("mediaid"))
        tags = parse_tags(get("tags"))
        note = _scalar_str(get("comments"))
        added_at = None
        if get("dateupdated") not in (None, ""):
            try:
                added_at = parse_date(get("dateupdated"))
            except ValueError:
                pass  # kept as it came, in extra

        if not found:
            yield n, RowError(n, "missing_value", f"Media #{n} has no MD5, SHA1, SHA256, PDQ or vPDQ")
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

    def target(self, meta: dict) -> tuple[str, str, str]:
        """(version, profile, shape) to write: the options, else what the bank's file said, else 2.0 with
        the Default profile (the one IPED and the national portals read) as a hash set."""
        version = str(self.options.get("version") or meta.get("version") or "2.0")
        if version not in VERSIONS:
            raise UsageError(f"VICS version must be one of {', '.join(VERSIONS)}, not {version!r}")
        shape = self.options.get("shape") or "media"
        if shape not in ("media", "cases"):
            raise UsageError(f"the VICS shape must be 'media' or 'cases', not {shape!r}")
        asked = self.options.get("profile")
        if asked:
            profile = PROFILES.get(str(asked).upper(), str(asked))
        elif meta.get("profile") and not meta.get("profile_assumed"):
            profile = meta["profile"]
        else:
            profile = "Default"
        if version != "2.0":
            if asked and profile.upper() not in ("US", "DEFAULT"):
                raise UsageError(f"VICS {version} names no profile: its categories are the US numbers, "
                                 f"so profile {profile} needs version 2.0")
            profile = "US"
        return version, profile, shape

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """Write VICS (2.0 by default; 1.1 to 1.3 with the `version` option or when the bank came from
        such a file). Entries sharing a `media_key` become one Media (they should arrive close together,
        as readers and the store give them; up to WRITE_WINDOW media are held open). A Media needs an
        MD5: groups without one are left out and counted in `left_out`, as are tombstones. A Media read
        from a VICS file is written back as it came, with only what Vigie changed patched in.

        Options: `version`, `profile` (US, UK, Default, CUSTOM...), `shape` (media, cases), and
        `bank_category` (default true: entries without a category of their own get the bank's).
        Returns the number of entries written."""
        meta = bank.extra or {}
        version, profile, shape = self.target(meta)
        self._start_write()
        self._default = bank.default_verdict if self.options.get("bank_category", True) else None
        out = io.TextIOWrapper(stream, encoding="utf-8", newline="\n")
        try:
            key, url = _metadata_for(version, profile, shape, meta)
            out.write("{" + json.dumps(key) + ": " + json.dumps(url, ensure_ascii=False) + ', "value": [')
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
            out.write("\n]")
            # Document fields other than the metadata and `value` go after `value`: IPED reads the
            # metadata key first and `value` second, and refuses a document with anything else.
            rest = {k: v for k, v in (meta.get("document") or {}).items()
                    if "count" not in k.lower() and k not in METADATA_KEYS and k != "value"}
            for k, v in rest.items():
                out.write(", " + json.dumps(k, ensure_ascii=False) + ": " + json.dumps(v, ensure_ascii=False))
            if rest:
                self.warnings.append(f"document fields {', '.join(rest)} written after 'value' (IPED refuses "
                                     "a document with fields other than the metadata and 'value')")
            out.write("}\n")
            out.flush()
            return written
        finally:
            out.detach()

    def _write_media(self, entries: Iterable[EntryData], out, profile: str) -> tuple[int, int]:
        groups: OrderedDict = OrderedDict()
        # The media written lately (`DONE_REMEMBERED`), to warn of one whose hashes arrive apart: bounded, so an
        # export of 100 million media does not hold them all (one split further apart is written twice unwarned).
        done: OrderedDict = OrderedDict()
        state = {"written": 0, "media": 0, "next_id": 1, "used": set(), "done": done}
        loose = 0
        for e in entries:
            if e.removed:
                self.leave_out("removed", e.value)
                continue
            if e.media_key:
                key = ("k", e.media_key)
                if key in done and key not in groups:
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
            done = state["done"]
            done[key] = None
            if len(done) > DONE_REMEMBERED:
                done.popitem(last=False)
        md5s = [e for e in group if e.signal == "md5"]
        if not md5s:
            name = group[0].media_key or group[0].value
            self.leave_out("no_md5", f"{name[:80]} ({', '.join(sorted({e.signal for e in group}))})", len(group))
            return
        lead = md5s[0]
        m = _media_record(lead, group, profile, self._default, state)
        out.write(",\n    " if state["media"] else "\n    ")
        out.write(json.dumps(m, ensure_ascii=False, default=str))
        state["media"] += 1
        state["written"] += len(group)


def parse_tags(raw) -> list[str]:
    if isinstance(raw, list):
        return [str(t).strip() for t in raw if str(t).strip()]
    return [t.strip() for t in re.split(r"[,;]", _scalar_str(raw) or "") if t.strip()]


def _alt_signal(a) -> str | None:
    """The Vigie signal an AlternativeHashes item carries, or None (PhotoDNA and other hashes)."""
    hname = a.get("HashName") if isinstance(a, dict) else None
    return HASH_NAMES.get(re.sub(r"[-_\s]", "", str(hname or "")).lower())


def _metadata_for(version: str, profile: str, shape: str, meta: dict) -> tuple[str, str]:
    """The metadata key and URL; the bank's own URL when it says the same thing (its spelling kept)."""
    frag = "Cases" if shape == "cases" else "Media"
    if version == "2.0":
        key, url = "@odata.context", CONTEXT.format(profile=profile, fragment=frag)
    else:
        key, url = "odata.metadata", CONTEXT_1X.format(version=version, fragment=frag)
    old = meta.get("metadata_url")
    if old and meta.get("metadata_key") == key:
        p = parse_metadata_url(old)
        same_profile = version != "2.0" or (p["profile"] or "").upper() == profile.upper()
        if p["version"] == version and same_profile and (p["fragment"] or "").lower() == frag.lower():
            url = old
    return key, url


def _norm(signal: str, raw) -> str | None:
    try:
        return get_signal(signal).normalise(str(raw))
    except InvalidHash:
        return None


def _hex_out(e: EntryData, raw) -> str:
    """A hash as the file gave it when it is the same hash (its case kept), else Vigie's spelling:
    upper-case hex as VICS writers use, PDQ in lower case, vPDQ as its frame list."""
    if raw is not None and _scalar_str(raw) is not None and _norm(e.signal, raw) == e.value:
        return raw
    return e.value if e.signal in ("pdq", "vpdq") else e.value.upper()


def _same_category(raw, verdict: Verdict | None, profile: str) -> bool:
    """True when the file's `Category` still says what the entry's verdict says (flags aside), so it
    is written back as it came (`"1"` stays a string, null stays null)."""
    a = category_verdict(raw, profile)
    if a is None or verdict is None:
        return a is None and verdict is None
    return (a.source_scheme, a.source_label) == (verdict.source_scheme, verdict.source_label)


def _media_record(lead: EntryData, group: list[EntryData], profile: str, default: Verdict | None,
                  state: dict) -> dict:
    """One Media: the record as the file gave it (when it came from one), with Vigie's current
    hashes, category, tags and note patched in; a new record for media Vigie knows of itself."""
    raw: dict = {}
    for e in [lead, *group]:
        for k, v in (e.extra or {}).items():
            if k not in FOREIGN:
                raw.setdefault(k, v)
    by_sig: dict[str, list[EntryData]] = {}
    for e in group:
        if e is not lead and e.value not in [x.value for x in by_sig.get(e.signal, [])]:
            by_sig.setdefault(e.signal, []).append(e)
    pending = {(e.signal, e.value): e for es in by_sig.values() for e in es}
    verdict = lead.verdict or default
    cat = category_label(verdict, profile)
    media_id, vigie_id = _media_id(_get(raw, "mediaid"), lead.external_id, state)
    m: dict = {}
    for k, v in raw.items():
        low = k.lower()
        if low == "mediaid":
            m[k] = media_id
        elif low == "category":
            m[k] = v if _same_category(v, verdict, profile) else cat
        elif low == "md5":
            m[k] = _hex_out(lead, v)
        elif low in ("sha1", "sha256", "pdq"):
            e = next((x for x in by_sig.get(low, []) if (low, x.value) in pending), None)
            if e is not None:
                m[k] = _hex_out(e, v if _norm(low, v) == e.value else None)
                del pending[(low, e.value)]
            elif _scalar_str(v) is None:
                m[k] = v  # null or "" as it came; a hash that is no longer in the bank is not written
        elif low == "alternativehashes" and isinstance(v, list):
            kept = []
            for a in v:
                sig = _alt_signal(a)
                if sig is None:
                    kept.append(a)
                    continue
                val = _norm(sig, a.get("HashValue"))
                if (sig, val) in pending:
                    kept.append(a)
                    del pending[(sig, val)]
            if kept or not v:
                m[k] = kept
        elif low == "tags":
            if parse_tags(v) == lead.tags:
                m[k] = v
            elif lead.tags:
                m[k] = ",".join(lead.tags)
        elif low == "comments":
            if _scalar_str(v) == lead.note:
                m[k] = v
            elif lead.note:
                m[k] = lead.note
        elif low == "vigieexternalid":
            m[k] = v if vigie_id is None or _scalar_str(v) == vigie_id else vigie_id
        else:
            m[k] = v
    lower = {k.lower() for k in m}
    fresh: dict = {}
    if "mediaid" not in lower:
        fresh["MediaID"] = media_id
    if "category" not in lower and cat is not None:
        fresh["Category"] = cat
    if "md5" not in lower:
        fresh["MD5"] = _hex_out(lead, None)
    m = {**fresh, **m}
    sha1 = next((e for (s, _), e in pending.items() if s == "sha1"), None)
    if sha1 is not None and "sha1" not in lower:
        m["SHA1"] = _hex_out(sha1, None)
        del pending[("sha1", sha1.value)]
    if lead.tags and "tags" not in lower:
        m["Tags"] = ",".join(lead.tags)
    if lead.note and "comments" not in lower:
        m["Comments"] = lead.note
    if lead.added_at and "dateupdated" not in lower and "mediaid" not in {k.lower() for k in raw}:
        m["DateUpdated"] = format_date(lead.added_at)
    if pending:
        alt_key = next((k for k in m if k.lower() == "alternativehashes"), "AlternativeHashes")
        alts = list(m.get(alt_key) or [])
        for (sig, _), e in pending.items():
            alts.append({"MD5": m.get(next(k for k in m if k.lower() == "md5")), "HashName": ALT_NAMES[sig],
                         "HashValue": _hex_out(e, None)})
        m[alt_key] = alts
    if vigie_id is not None and "vigieexternalid" not in lower:
        m["VigieExternalId"] = vigie_id
    return m


def _get(d: dict, low: str):
    return next((v for k, v in d.items() if k.lower() == low), None)


def _media_id(raw, external_id: str | None, state: dict):
    """(MediaID, VigieExternalId or None). The file's own MediaID where it is not used yet in this file
    (written as it came, a string stays a string); else the external id where it is a number not yet
    used; else the next free running number, and an external id that cannot be the MediaID goes in
    VigieExternalId.

    Every number from 1 below `next_id` is used (given out, or claimed by a file), so only the claims at or
    above it are remembered (`state["used"]`), and forgotten once the running numbers pass them: an export of
    100 million media does not hold 100 million numbers."""
    claimed = state["used"]

    def free(k: int) -> bool:
        return k not in claimed and (k == 0 or k >= state["next_id"])

    s = _scalar_str(raw)
    if s is not None and s.isdigit() and free(int(s)):
        claimed.add(int(s))
        return raw, None
    if external_id is not None and external_id.isdigit() and free(int(external_id)) \
            and str(int(external_id)) == external_id:
        claimed.add(int(external_id))
        return int(external_id), None
    mid = state["next_id"]
    while mid in claimed:
        claimed.discard(mid)
        mid += 1
    state["next_id"] = mid + 1
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
