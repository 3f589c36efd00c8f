"""The police export of one report: everything Vigie knows about it, in one zip a case file can hold.

Police need the whole history, not a summary: the report as received (contact included, it
is for them), every URL and sighting with its hashes, every notice as sent, and the audit
records that show who did what. `manifest.json` carries the SHA-256 of each file so the
receiver can prove nothing changed after export; the export itself is in the audit trail.
Known material is never held, so it can never be in the zip; unknown media that went to
review can be added on request (`include_media`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import mimetypes
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import or_, select

from vigie import __version__, audit
from vigie.accounts import aware
from vigie.actions.takedown import notice_rows
from vigie.errors import NotFound, VigieError
from vigie.ingest.reports import open_contact
from vigie.settings import Settings
from vigie.store.db import Store
from vigie.store.intake_models import (
    Notice,
    NoticeItem,
    Provider,
    Report,
    ReportedUrl,
    ReportUrl,
    Sighting,
    SightingPage,
)

SCHEMA = "vigie.escalation/1"
URL_FIELDS = ["id", "url", "host", "first_reported_at", "last_reported_at", "report_count", "crawl_state",
              "crawled_at", "outcome", "error_code", "error", "pages_fetched", "media_found"]
SIGHTING_FIELDS = ["id", "media_url", "page_url", "other_pages", "host", "ip", "http_status", "found_at", "sha256",
                   "md5", "pdq", "media_type", "size", "outcome", "bank", "category", "state", "removed_at",
                   "provider", "first_notice_at", "last_notice_at", "notices"]


def _val(v):
    if isinstance(v, datetime):
        return aware(v).astimezone(UTC).isoformat()
    return v


def _csv(rows: list[dict], fields: list[str]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else _val(r.get(k)) for k in fields})
    return buf.getvalue().encode()


def _json(obj) -> bytes:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=_val).encode()


def _row(obj, fields) -> dict:
    return {f: _val(getattr(obj, f)) for f in fields}


def _collect(store: Store, reference: str) -> dict:
    with store.sessions() as s:
        rep = s.scalar(select(Report).where(Report.reference == reference))
        if rep is None:
            raise NotFound(f"no report {reference!r}", code="report_not_found")
        report = _row(rep, ["id", "reference", "received_at", "channel", "description", "seen", "contact", "status",
                            "reason", "closed_at"])
        report["contact"] = open_contact(store.settings, rep.contact)  # sealed in the store, for the police here
        urls = list(s.scalars(select(ReportedUrl).join(ReportUrl, ReportUrl.url_id == ReportedUrl.id)
                              .where(ReportUrl.report_id == rep.id).order_by(ReportedUrl.id)))
        url_ids = [u.id for u in urls]
        sightings = []
        pages: dict[int, list[str]] = {}
        if url_ids:
            via_page = select(SightingPage.sighting_id).where(SightingPage.url_id.in_(url_ids))
            sightings = list(s.scalars(select(Sighting).where(or_(Sighting.url_id.in_(url_ids),
                                                                  Sighting.id.in_(via_page)))
                                       .order_by(Sighting.id)))
            for sid, page in s.execute(select(SightingPage.sighting_id, SightingPage.page_url)
                                       .where(SightingPage.sighting_id.in_([x.id for x in sightings]))):
                if page:
                    pages.setdefault(sid, []).append(page)
        names = dict(s.execute(select(Provider.id, Provider.name)).all())
        srows = []
        for x in sightings:
            r = _row(x, [f for f in SIGHTING_FIELDS if f not in ("provider", "other_pages")])
            r["provider"] = names.get(x.provider_id)
            r["other_pages"] = " ".join(sorted(set(pages.get(x.id, [])) - {x.page_url}))
            srows.append(r)
        notice_ids = set()
        if sightings:
            notice_ids = set(s.scalars(select(NoticeItem.notice_id)
                                       .where(NoticeItem.sighting_id.in_([x.id for x in sightings]))))
        notice_refs = set(s.scalars(select(Notice.reference).where(Notice.id.in_(notice_ids)))) if notice_ids else set()
        return {"report": report, "urls": [_row(u, URL_FIELDS) for u in urls], "sightings": srows,
                "review_media": [(x.sha256, x.media_type) for x in sightings
                                 if x.outcome == "unknown" and x.sha256 and x.review_item_id is not None],
                "objects": _objects(rep, url_ids, [x.id for x in sightings], notice_ids, notice_refs)}


def _objects(rep: Report, url_ids, sighting_ids, notice_ids, notice_refs) -> set[tuple[str, str]]:
    """(object_type, object_id) pairs of the audit records that belong in this export."""
    objs = {("report", str(rep.id)), ("report", rep.reference)}
    objs |= {(t, str(i)) for i in url_ids for t in ("reported_url", "url")}
    objs |= {("sighting", str(i)) for i in sighting_ids}
    objs |= {("notice", str(i)) for i in notice_ids} | {("notice", r) for r in notice_refs}
    return objs


def _audit_lines(store: Store, objects: set[tuple[str, str]]) -> bytes:
    out = []
    for r in audit.iter_records(store):
        if (r.object_type, r.object_id) in objects:
            out.append(json.dumps({"seq": r.seq, "at": _val(r.at), "actor": r.actor, "action": r.action,
                                   "object_type": r.object_type, "object_id": r.object_id, "detail": r.detail,
                                   "prev_hash": r.prev_hash, "hash": r.hash}, sort_keys=True, default=str))
    return ("\n".join(out) + ("\n" if out else "")).encode()


def _media(store: Store, settings: Settings, wanted) -> tuple[dict[str, bytes], list[dict]]:
    from sqlalchemy import select as _select

    from vigie.review import showable
    from vigie.review.media import read_media
    from vigie.store.review_models import ReviewItem

    files, skipped = {}, []
    for sha, mtype in sorted(set(wanted)):
        with store.sessions() as s:
            item = s.scalar(_select(ReviewItem).where(ReviewItem.sha256 == sha))
        # The choke point's rule: content a bank knows now never leaves Vigie, not even to the police export.
        if item is not None and (item.state == "known" or showable.known_now(store, settings, [item])[0]):
            skipped.append({"sha256": sha, "code": "known_material",
                            "message": "a bank knows this content: it is never exported"})
            continue
        try:
            data = read_media(store, settings, sha)
        except VigieError as exc:
            skipped.append({"sha256": sha, "code": exc.code, "message": exc.message})
            continue
        except Exception as exc:  # noqa: BLE001 - one unreadable file never spoils the export
            skipped.append({"sha256": sha, "code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
            continue
        ext = mimetypes.guess_extension(mtype or "") or ".bin"
        files[f"media/{sha}{ext}"] = data
    return files, skipped


def escalation_zip(store: Store, settings: Settings, reference: str, *, include_media: bool = False,
                   by: str) -> tuple[bytes, dict]:
    """The zip for one report, built in memory (never in a temp folder: it may hold review media in clear),
    and what it holds; the export is recorded in the audit trail."""
    data = _collect(store, reference)
    now = datetime.now(UTC)
    notices = notice_rows(store, limit=100_000, sighting_ids=[x["id"] for x in data["sightings"]], bodies=True)
    files: dict[str, bytes] = {
        "report.json": _json(data["report"]),
        "urls.csv": _csv(data["urls"], URL_FIELDS),
        "sightings.csv": _csv(data["sightings"], SIGHTING_FIELDS),
        "notices.json": _json(sorted(notices, key=lambda n: n["id"])),
        "audit.jsonl": _audit_lines(store, data["objects"]),
    }
    skipped: list[dict] = []
    if include_media:
        media, skipped = _media(store, settings, data["review_media"])
        files |= media
    manifest = {"schema": SCHEMA, "reference": reference, "hotline": settings.hotline_name,
                "created_at": _val(now), "created_by": by, "vigie_version": __version__,
                "include_media": include_media, "media_skipped": skipped,
                "counts": {"urls": len(data["urls"]), "sightings": len(data["sightings"]), "notices": len(notices)},
                "files": [{"name": n, "size": len(b), "sha256": hashlib.sha256(b).hexdigest()}
                          for n, b in files.items()]}
    mbytes = _json(manifest)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, b in files.items():
            z.writestr(name, b)
        z.writestr("manifest.json", mbytes)
    blob = buf.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    msha = hashlib.sha256(mbytes).hexdigest()
    media_names = [n for n in files if n.startswith("media/")]
    audit.record(store, by, "escalation.export", "report", reference,
                 {"include_media": include_media, "manifest_sha256": msha, "zip_sha256": digest,
                  "files": len(files) + 1, "media": len(media_names), "media_skipped": len(skipped)})
    return blob, {"reference": reference, "zip_sha256": digest, "manifest_sha256": msha,
                  "files": sorted([*files, "manifest.json"]), "urls": len(data["urls"]),
                  "sightings": len(data["sightings"]), "notices": len(notices), "media": len(media_names),
                  "media_skipped": skipped}


def export_escalation(store: Store, settings: Settings, reference: str, out_path, *, include_media: bool = False,
                      by: str) -> dict:
    """Write the zip for one report straight into `out_path` and return what it holds: built in memory,
    written beside its destination as ``.NAME.part`` (0600 from its creation) and renamed onto it, so
    the folder only ever holds the whole export and nothing goes through a temp folder."""
    blob, info = escalation_zip(store, settings, reference, include_media=include_media, by=by)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = out.with_name(f".{out.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)  # a .part left by a crash may have been made with another mode
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {**info, "path": str(out)}
