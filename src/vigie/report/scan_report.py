"""The report of a scan: summary.json, files.csv, media.vics.json and report.html in the output folder.

Everything is rebuilt from the store, so a resumed scan writes the same report as one
that was never interrupted. The HTML shows no picture at all (`vigie.report.html`); miniatures
of unknown media are written only when asked, sealed (`vigie.report.thumbs`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import json
import os
from collections import Counter

import numpy as np
from sqlalchemy import distinct, func, select, tuple_

from vigie import __version__
from vigie.banks.records import BankMeta, EntryData
from vigie.banks.verdict import from_label
from vigie.index import hex_to_hashes
from vigie.ingest import mediastore
from vigie.ingest.process import NOT_ERRORS
from vigie.ingest.runs import summarize as summarize_runs
from vigie.media.sniff import is_media
from vigie.report.clusters import cluster_array
from vigie.report.html import render_html
from vigie.settings import Settings
from vigie.store.db import Store
from vigie.store.models import Scan, ScanFile

FILES_COLUMNS = ["location", "size", "media_type", "md5", "sha1", "sha256", "pdq", "class", "bank", "category",
                 "distance", "cluster", "flags", "error", "variant", "start", "end"]


#: The columns the report reads: rows, not ORM objects (a scan may hold 50 million locations).
_COLUMNS = (ScanFile.seq, ScanFile.location, ScanFile.size, ScanFile.media_type, ScanFile.md5, ScanFile.sha1,
            ScanFile.sha256, ScanFile.pdq, ScanFile.klass, ScanFile.matches, ScanFile.flags, ScanFile.error_code,
            ScanFile.error_message, ScanFile.detail)


#: Rows read per query: the most rows the report holds at once.
ROWS_CHUNK = 5000


def _rows(store: Store, scan_id: int, *where, columns=_COLUMNS, order=(ScanFile.seq,), chunk: int | None = None):
    """The scan's rows in `order` (scan order by default; named tuples with the model's attribute names), read
    in chunks, each after the last one's key (an index on `(scan_id, *order)` serves it), so that memory stays
    flat; `where`: more conditions (a narrower read), `columns`: fewer columns (the `order` ones among them)."""
    chunk = chunk or ROWS_CHUNK
    with store.sessions() as s:
        last = None
        while True:
            after = () if last is None else (tuple_(*order) > tuple_(*last),)
            rows = s.execute(select(*columns).where(ScanFile.scan_id == scan_id, *where, *after)
                             .order_by(*order).limit(chunk)).all()
            if not rows:
                return
            yield from rows
            last = tuple(getattr(rows[-1], c.key) for c in order)


def acquisition_entry(location: str, file_sha256: str, meta: dict) -> dict:
    """The acquisition hash of a disk image: the hash of its media content. For a raw image that is the file's
    own SHA-256; for an E01 or a split raw image, the media read through (`vigie.ingest.evidence`), with the
    file's SHA-256 beside it and, for an E01, the hashes stored at acquisition and whether they match."""
    entry = {"location": location, "sha256": meta.get("media_sha256") or file_sha256}
    if meta.get("media_sha256"):
        entry.update({"md5": meta.get("media_md5"), "sha1": meta.get("media_sha1"), "size": meta.get("media_size"),
                      "file_sha256": file_sha256, "format": meta.get("format")})
    for k in ("stored_md5", "stored_sha1", "stored_sha256", "hash_check", "segments"):
        if meta.get(k) is not None:
            entry[k] = meta[k]
    return entry


#: Groups of unknown pictures listed in report.html, and locations listed per group (all are in files.csv,
#: column `cluster`): a seized drive's millions of groups are counted, not each written into the page.
HTML_CLUSTERS = 1000
HTML_MEMBERS = 5


def write_report(store: Store, settings: Settings, scan_id: int, out_dir: str) -> dict:
    """Write the report from the store. Its memory is bounded by the scan's distinct unknown pictures (their PDQs,
    clustered, about 200 bytes each), not by its locations: every other figure is counted, streamed to its file
    or read back by SQL (the VICS export in MD5 order)."""
    with store.sessions() as s:
        scan = s.get(Scan, scan_id)
        s.expunge(scan)
        contents = s.scalar(select(func.count(distinct(ScanFile.sha256))).where(ScanFile.scan_id == scan_id)) or 0
        video_groups = s.scalar(select(func.count(distinct(func.substr(ScanFile.sha256, 1, 12)))).where(
            ScanFile.scan_id == scan_id, ScanFile.klass == "unknown", ScanFile.pdq.is_(None),
            ScanFile.media_type.like("video/%"))) or 0
    groups = UnknownGroups(store, scan_id, settings.pdq_threshold)

    by_class, by_type, by_cat, by_bank, errors = Counter(), Counter(), Counter(), Counter(), Counter()
    flags_count: Counter = Counter()
    auto_media, media_locs = 0, 0
    records: Counter = Counter()
    acquisition = []
    srcs = SourceHashes(scan, out_dir)
    links = ThumbnailLinks(out_dir)
    gallery = _gallery(store, scan_id)  # Android thumbnails' originals, from the MediaStore databases scanned
    with open(os.path.join(out_dir, "files.csv.part"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FILES_COLUMNS)
        for r in _rows(store, scan_id):
            top = (r.matches or [None])[0]
            by_class[r.klass] += 1
            by_type[r.media_type or "unknown"] += 1
            if r.error_code in NOT_ERRORS:
                records[r.error_code] += 1  # links, special files, file-system structures: records
            elif r.error_code:
                errors[r.error_code] += 1
            for fl in r.flags or []:
                flags_count[fl] += 1
            src_meta = (r.detail or {}).get("source", {})
            if "thumbnail_of" in (r.flags or []):
                links.add(r, top)
            elif gallery and (of := gallery.original(r.location, src_meta)) is not None:
                links.add(r, top, of={"uri": of[0]}, by=of[1])
            if is_media(r.media_type):
                media_locs += 1
                auto_media += r.klass in ("exact", "near")
            if top:
                by_cat[top.get("category") or "uncategorised"] += 1
                by_bank[top["bank"]] += 1
            cl = groups.add(r) if r.klass == "unknown" else ""
            srcs.add(r, src_meta)
            if src_meta.get("acquisition") and r.sha256:
                acquisition.append(acquisition_entry(r.location, r.sha256, src_meta))
            w.writerow([r.location, r.size if r.size is not None else "", r.media_type or "", r.md5 or "",
                        r.sha1 or "", r.sha256 or "", r.pdq or "", r.klass, top["bank"] if top else "",
                        (top.get("category") or "") if top else "", top["distance"] if top else "", cl,
                        ";".join(r.flags or []), f"{r.error_code}: {r.error_message}" if r.error_code else "",
                        f"{top.get('query_variant')}/{top.get('entry_variant')}" if top and top.get("query_variant")
                        else "", top.get("start", "") if top else "", top.get("end", "") if top else ""])
    os.replace(os.path.join(out_dir, "files.csv.part"), os.path.join(out_dir, "files.csv"))
    sources = srcs.finish()
    _write_vics(out_dir, scan, _media_groups(store, scan_id))
    spared = auto_media
    summary = {
        "tool": "vigie", "version": __version__, "scan_id": scan.id, "case": scan.case_id, "operator": scan.operator,
        "sources": sorted(scan.sources), "source_hashes": sources, "acquisition_hashes": acquisition,
        "started_at": scan.started_at.isoformat() if scan.started_at else None,
        "finished_at": scan.finished_at.isoformat() if scan.finished_at else None,
        "hashing_seconds": round(scan.hashing_seconds or 0.0, 3), "status": scan.status,
        "banks": (scan.meta or {}).get("banks"),
        "counts": {"locations": sum(by_class.values()), "distinct_contents": contents,
                   "by_class": {k: by_class.get(k, 0) for k in ("exact", "near", "unknown", "error", "skipped")},
                   "by_media_type": dict(sorted(by_type.items())), "by_category": dict(sorted(by_cat.items())),
                   "by_bank": dict(sorted(by_bank.items())), "errors": dict(sorted(errors.items())),
                   "records": dict(sorted(records.items())),
                   "flags": dict(sorted(flags_count.items()))},
        "exposure_spared": {"media_locations": media_locs, "classified_without_viewing": spared,
                            "share": round(spared / media_locs, 4) if media_locs else 0.0},
        "unknown_clusters": groups.count + video_groups,
        "thumbnail_links": links.finish(),
        **summarize_runs(scan.meta),  # runs, runs_dropped, evidence_changed (vigie.ingest.runs)
    }
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    render_html(os.path.join(out_dir, "report.html"), summary, groups.shown(), errors_list(store, scan_id), out_dir,
                links.known_rows)
    return summary


class UnknownGroups:
    """The scan's unknown pictures in groups of near-duplicates (`vigie.report.clusters`), named `c0001`... in
    order of each group's first picture; an unknown video without a PDQ is a group of its own, `v-<sha256[:12]>`.

    The distinct unknown pictures are read once (each content's first row, in scan order, by SQL) into arrays: a
    SHA-256 and a PDQ each, and its group's number; each location is then named by looking its SHA-256 up. For
    report.html only the first `HTML_CLUSTERS` groups of each kind keep their first `HTML_MEMBERS` locations,
    their size and their flags."""

    def __init__(self, store: Store, scan_id: int, threshold: int):
        firsts = select(ScanFile.sha256, ScanFile.pdq, ScanFile.seq, func.row_number().over(
            partition_by=ScanFile.sha256, order_by=ScanFile.seq).label("n")).where(
            ScanFile.scan_id == scan_id, ScanFile.klass == "unknown", ScanFile.pdq.is_not(None)).subquery()
        shas, pdqs = [], []
        with store.sessions() as s:
            rows = s.execute(select(firsts.c.sha256, firsts.c.pdq).where(firsts.c.n == 1).order_by(firsts.c.seq))
            for chunk in rows.partitions(ROWS_CHUNK):
                # As hex text ("S64"): numpy's bytes compare without their trailing NUL bytes, a raw digest
                # ending in 00 would not be found again.
                shas.append(np.array([r.sha256.encode("ascii") for r in chunk], dtype="S64"))
                pdqs.append(hex_to_hashes([r.pdq for r in chunk]))
        keys = np.concatenate(shas) if shas else np.zeros(0, "S64")
        numbers = cluster_array(np.concatenate(pdqs), threshold) if pdqs else np.zeros(0, np.int64)
        self.count = int(numbers.max()) + 1 if len(numbers) else 0
        self.sizes = np.bincount(numbers, minlength=self.count) if len(numbers) else np.zeros(0, np.int64)
        order = np.argsort(keys, kind="stable")
        self.keys, self.numbers = keys[order], numbers[order]
        self.groups: dict[str, dict] = {}
        self.videos_kept = 0

    def number(self, sha256: str | None) -> int | None:
        if not sha256 or not len(self.keys):
            return None
        key = sha256.encode("ascii", "replace")
        i = int(np.searchsorted(self.keys, key))
        return int(self.numbers[i]) if i < len(self.keys) and bytes(self.keys[i]) == key else None

    def add(self, r) -> str:
        """The group of an unknown location ('' for none), noted for report.html while its group is shown."""
        n = self.number(r.sha256)
        if n is not None:
            name, shown, contents, video = f"c{n + 1:04d}", n < HTML_CLUSTERS, int(self.sizes[n]), False
        elif r.media_type and r.media_type.startswith("video/"):
            name, contents, video = f"v-{r.sha256[:12]}", 1, True
            shown = name in self.groups or self.videos_kept < HTML_CLUSTERS
            self.videos_kept += name not in self.groups
        else:
            return ""
        if shown:
            g = self.groups.get(name)
            if g is None:
                g = self.groups[name] = {"name": name, "members": [], "count": 0, "contents": contents,
                                         "flags": set(), "video": video}
            g["count"] += 1
            g["flags"].update(r.flags or [])
            if len(g["members"]) < HTML_MEMBERS:
                g["members"].append({"location": r.location, "sha256": r.sha256})
        return name

    def shown(self) -> list[dict]:
        """The groups report.html lists, by name (`c…` before `v-…`), at most `HTML_CLUSTERS`."""
        out = sorted(self.groups.values(), key=lambda g: g["name"])[:HTML_CLUSTERS]
        for g in out:
            g["flags"] = sorted(g["flags"])
        return out


def _media_groups(store: Store, scan_id: int):
    """The scan's pictures and videos by MD5 (MD5 order; each medium's locations in scan order), read back in chunks
    through the (scan_id, md5, seq) index: `(first row, its top match, [VICS MediaFile...])` per medium."""
    media = (ScanFile.md5.is_not(None), ScanFile.media_type.like("image/%") | ScanFile.media_type.like("video/%"))
    cols = (ScanFile.md5, ScanFile.seq, ScanFile.location, ScanFile.size, ScanFile.media_type, ScanFile.sha1,
            ScanFile.sha256, ScanFile.pdq, ScanFile.matches, ScanFile.flags, ScanFile.detail)
    group = None
    for r in _rows(store, scan_id, *media, columns=cols, order=(ScanFile.md5, ScanFile.seq)):
        if group is None or group[0].md5 != r.md5:
            if group is not None:
                yield group
            group = (r, (r.matches or [None])[0], [])
        group[2].append(media_file(r, (r.detail or {}).get("source", {})))
    if group is not None:
        yield group


#: Thumbnails of known material listed in report.html (all are in thumbnail_links.csv).
KNOWN_LINKS_SHOWN = 500
THUMBNAIL_COLUMNS = ["location", "sha256", "class", "bank", "category", "original_uri", "original_mtime", "linked_by"]


def _gallery(store: Store, scan_id: int) -> mediastore.Gallery:
    """The MediaStore links of every MediaStore database of the scan (`vigie.ingest.mediastore`)."""
    gallery = mediastore.Gallery()
    rows = _rows(store, scan_id, ScanFile.location.like("%.db"), columns=(ScanFile.seq, ScanFile.location,
                                                                            ScanFile.detail))
    for r in rows:
        if mediastore.is_mediastore(r.location):
            gallery.add((r.detail or {}).get("mediastore") or {}, r.location)
    return gallery


class ThumbnailLinks:
    """`thumbnail_links.csv`: each thumbnail found with the file it was made of: a desktop's (a PNG holding
    ``Thumb::URI``, flag `thumbnail_of`; `linked_by` `thumb_uri`) or an Android Gallery's (`.thumbnails/<n>.jpg`
    named in a MediaStore database of the scan, `vigie.ingest.mediastore`; `linked_by` `mediastore`). One whose
    class is `exact` or `near` shows known material was on the device at that path, even where the file itself
    is gone. Written only when there is one."""

    def __init__(self, out_dir: str):
        self.path = os.path.join(out_dir, "thumbnail_links.csv")
        self.f = self.w = None
        self.count = self.known = 0
        self.known_rows: list[dict] = []  # the first ones of known material, for report.html

    def add(self, r, top: dict | None, of: dict | None = None, by: str = "thumb_uri") -> None:
        """A thumbnail's row; `of`: its original (`uri`, `mtime`), else the one its own metadata names."""
        if of is None:
            of = ((r.detail or {}).get("provenance") or {}).get("thumbnail_of") or {}
        if self.w is None:
            self.f = open(self.path + ".part", "w", newline="")  # noqa: SIM115 - closed in finish()
            self.w = csv.writer(self.f)
            self.w.writerow(THUMBNAIL_COLUMNS)
        self.w.writerow([r.location, r.sha256 or "", r.klass, top["bank"] if top else "",
                         (top.get("category") or "") if top else "", of.get("uri", ""), of.get("mtime", ""), by])
        self.count += 1
        if r.klass in ("exact", "near"):
            self.known += 1
            if len(self.known_rows) < KNOWN_LINKS_SHOWN:
                self.known_rows.append({"location": r.location, "uri": of.get("uri", ""), "class": r.klass,
                                        "bank": top["bank"] if top else "",
                                        "category": (top.get("category") or "") if top else ""})

    def finish(self) -> dict:
        if self.f is not None:
            self.f.close()
            os.replace(self.path + ".part", self.path)
        elif os.path.exists(self.path):
            os.remove(self.path)  # from an earlier run of a scan that found none this time
        return {"count": self.count, "known": self.known}


def errors_list(store: Store, scan_id: int, limit: int = 2000) -> list[dict]:
    """The first `limit` locations with an error code (records included), in scan order."""
    cols = (ScanFile.seq, ScanFile.location, ScanFile.error_code, ScanFile.error_message, ScanFile.klass)
    rows = _rows(store, scan_id, ScanFile.error_code.is_not(None), columns=cols, chunk=limit)
    return [{"location": r.location, "code": r.error_code, "message": r.error_message, "class": r.klass}
            for r in itertools.islice(rows, limit)]


def _write_vics(out_dir: str, scan: Scan, groups) -> None:
    """Every medium as a VICS 2.0 case export, so Griffeye and Project VIC tools can load the scan; `groups` from
    `_media_groups`, streamed into the file."""
    from vigie.banks.formats import get_format

    def entries():
        for r, top, files in groups:
            verdict = None
            vics = (top or {}).get("labels", {}).get("vics_us")
            if vics is not None:
                verdict = from_label("vics_us", vics)
            extra = {"MediaSize": r.size, "MimeType": r.media_type, "MediaFiles": files}
            yield EntryData("md5", r.md5, verdict=verdict, media_key=r.md5, extra=extra)
            if r.sha1:
                yield EntryData("sha1", r.sha1, verdict=verdict, media_key=r.md5)
            if r.sha256:
                yield EntryData("sha256", r.sha256, verdict=verdict, media_key=r.md5)
            if r.pdq:
                yield EntryData("pdq", r.pdq, verdict=verdict, media_key=r.md5)

    meta = BankMeta(name=f"scan {scan.case_id or scan.key[:12]}", extra={
        "case": {"CaseNumber": scan.case_id or "", "SourceApplicationName": "Vigie",
                 "SourceApplicationVersion": __version__}})
    tmp = os.path.join(out_dir, "media.vics.json.part")
    with open(tmp, "wb") as f:
        get_format("vics")(shape="cases").write(entries(), f, bank=meta)
    os.replace(tmp, os.path.join(out_dir, "media.vics.json"))


#: VICS MediaFiles time fields, from the times a scan reads (file system, archive header).
VICS_TIMES = (("Created", "crtime"), ("Written", "mtime"), ("Accessed", "atime"))


def media_file(r, src_meta: dict) -> dict:
    """One occurrence of a medium as a VICS MediaFile: its whole file name (a ``!`` in a name is part of it;
    the member's own name is recorded by the scan), its path on the evidence, its times, deleted or not."""
    from vigie.banks.formats._common import format_date

    name = src_meta.get("member") or r.location
    f = {"MD5": r.md5.upper(), "FileName": name.rstrip("/").rsplit("/", 1)[-1], "FilePath": r.location}
    if r.sha256:
        f["SHA256"] = r.sha256.upper()
    for field, key in VICS_TIMES:
        t = _when(src_meta.get(key))
        if t is not None:
            f[field] = format_date(t)
    if "deleted" in (r.flags or []):
        f["Deleted"] = "true"
    return f


def _when(v) -> dt.datetime | None:
    """A time as the scan recorded it (seconds since 1970 from file systems and tar, ISO text from zip)."""
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return dt.datetime.fromtimestamp(v, dt.UTC)
        if isinstance(v, str) and v:
            return dt.datetime.fromisoformat(v)
    except (ValueError, OverflowError, OSError):
        return None
    return None


class SourceHashes:
    """The hash of every source, as given (a relative path too): a file's SHA-256, or for a folder the SHA-256
    of its manifest, written beside the report as ``source-N.sha256`` in `sha256sum` format (every file read
    on disk under it, in scan order, paths relative to the folder): `cd folder && sha256sum -c` checks it."""

    def __init__(self, scan: Scan, out_dir: str):
        meta = scan.meta or {}
        given = meta.get("source_locations") or list(scan.sources)
        self.out_dir = out_dir
        self.items = [{"path": a, "location": g} for a, g in zip(scan.sources, given)]
        self.folders: dict[str, dict] = {}

    def add(self, r, src_meta: dict) -> None:
        for s in self.items:
            loc = s["location"]
            if r.location == loc:
                if r.sha256:
                    s["sha256"] = r.sha256
                    s["kind"] = "file"
                return
            prefix = loc.rstrip("/") + "/"
            if r.location.startswith(prefix) and r.sha256 and "member" not in src_meta:
                f = self.folders.get(loc)
                if f is None:
                    n = len(self.folders) + 1
                    path = os.path.join(self.out_dir, f"source-{n}.sha256")
                    f = self.folders[loc] = {"h": hashlib.sha256(), "n": 0, "name": os.path.basename(path),
                                             "out": open(path + ".part", "w", encoding="utf-8",  # noqa: SIM115 - closed in finish
                                                                 newline="\n")}
                line = f"{r.sha256}  {r.location[len(prefix):]}\n"
                f["h"].update(line.encode("utf-8"))
                f["n"] += 1
                f["out"].write(line)
                return

    def finish(self) -> list[dict]:
        out = []
        for s in self.items:
            f = self.folders.get(s["location"])
            if f is not None:
                f["out"].close()
                final = os.path.join(self.out_dir, f["name"])
                os.replace(final + ".part", final)
                s.update(sha256=f["h"].hexdigest(), kind="folder", files=f["n"], manifest=f["name"])
            if "sha256" in s:
                out.append(s)
        return out
