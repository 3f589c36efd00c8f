"""Reports from the public: one or more URLs, what was seen, optionally a way to be contacted.

A report is committed before its reference is given back, so a crash after the answer loses
nothing. Each distinct URL is one case (`ReportedUrl`): the same URL reported again joins
it (its count grows) and, when its last crawl is over, it is crawled again, because what a
page serves changes. The reporter's address is never stored (the web layer rate-limits on
a keyed hash that changes every hour, in memory).

A report's status follows its URLs (`refresh_statuses`):

* ``received``: no crawl has started; ``crawling``: some URL is still being crawled;
* ``founded``: known material was found at one of its URLs (a takedown notice follows);
* ``in_review``: media nobody knows yet were found and wait for analysts; a confirmed
  illegal decision makes the report founded, a not-illegal one unfounded;
* ``unfounded``: nothing was found, with the reason shown to the reporter.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from vigie import audit
from vigie.accounts import aware
from vigie.errors import InvalidInput, NotFound
from vigie.store.db import Store
from vigie.store.intake_models import Report, ReportedUrl, ReportUrl, Sighting, SightingPage

SEEN = ("image", "video", "text", "other")
STATUSES = ("received", "crawling", "founded", "in_review", "unfounded")
MAX_URL = 2048
MAX_DESCRIPTION = 5000
MAX_CONTACT = 500
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread
#: What the reporter is told for each status (no detail about the material itself).
MEANING = {
    "received": "Your report was received and waits to be checked.",
    "crawling": "The addresses you reported are being checked.",
    "founded": "Illegal material was confirmed at an address you reported; the hosting provider has been asked to "
               "remove it.",
    "in_review": "Material was found and is being assessed by an analyst.",
    "unfounded": "No illegal material was confirmed at the addresses you reported.",
}


class BadUrl(InvalidInput):
    code = "bad_url"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def new_reference() -> str:
    """`VR-XXXX-XXXX-XXXX`: 60 random bits, so a reference cannot be guessed to read another report's status."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    return f"VR-{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_url(url: str) -> str:
    """The canonical form that decides whether two reports name the same URL.

    Scheme and host are lower-cased (the host IDNA-encoded), a default port and the fragment
    are dropped, an empty path becomes ``/``; path and query are kept as given (servers may
    treat them case-sensitively). A URL without a scheme is taken as http. User names and
    passwords in URLs are refused: a report must not carry credentials."""
    if not isinstance(url, str) or not url.strip():
        raise BadUrl("an empty URL")
    u = url.strip()
    if len(u) > MAX_URL:
        raise BadUrl(f"a URL longer than {MAX_URL} characters")
    if any(c in u for c in "\r\n\t\x00 "):
        raise BadUrl("a URL may not contain spaces or control characters")
    if "://" not in u.split("?", 1)[0]:
        u = "http://" + u
    try:
        p = urlsplit(u)
        port = p.port
    except ValueError as exc:
        raise BadUrl(f"not a valid URL: {exc}") from None
    scheme = p.scheme.lower()
    if scheme not in ("http", "https"):
        raise BadUrl(f"only http and https addresses can be reported, not {scheme}:")
    if p.username is not None or p.password is not None:
        raise BadUrl("a URL with a user name or password is refused")
    host = (p.hostname or "").rstrip(".")
    if not host:
        raise BadUrl("a URL without a host")
    try:
        host = host.encode("idna").decode("ascii").lower() if not _is_ip_literal(host) else host.lower()
    except UnicodeError:
        raise BadUrl(f"not a valid host name: {host}") from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, p.path or "/", p.query, ""))


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def submit(store: Store, urls: list[str], *, description: str | None = None, seen: list[str] | tuple = (),
           contact: str | None = None, channel: str = "web", max_urls: int = 20, now: datetime | None = None,
           by: str = "public") -> dict:
    """Record one report (atomically) and queue its URLs for the crawler; returns its reference.

    Raises `bad_url` for a URL that cannot be crawled, `invalid_input` for the rest; nothing is
    stored then."""
    now = _now(now)
    if not urls:
        raise InvalidInput("give at least one URL", code="no_urls")
    if len(urls) > max_urls:
        raise InvalidInput(f"at most {max_urls} URLs in one report", code="too_many_urls")
    norm = list(dict.fromkeys(normalise_url(u) for u in urls))
    seen = list(dict.fromkeys(seen or ()))
    bad = [x for x in seen if x not in SEEN]
    if bad:
        raise InvalidInput(f"'seen' takes {', '.join(SEEN)}; not {', '.join(map(str, bad))}", code="bad_value")
    description = (description or "").strip() or None
    contact = (contact or "").strip() or None
    if description and len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"the description is longer than {MAX_DESCRIPTION} characters", code="too_long")
    if contact and len(contact) > MAX_CONTACT:
        raise InvalidInput(f"the contact is longer than {MAX_CONTACT} characters", code="too_long")
    joined = 0
    with store.session() as s:  # the report, its URLs (the crawl queue) and its audit record: one transaction
        rep = Report(reference=new_reference(), received_at=now, channel=channel, description=description,
                     seen=seen, contact=seal_contact(store.settings, contact), status="received")
        s.add(rep)
        s.flush()
        for u in norm:
            key = url_key(u)
            # Two reports of a new URL at the same instant: one inserts, the other joins (never a 500).
            ins = (pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert)(ReportedUrl.__table__)
            created = s.execute(ins.values(url=u, url_key=key, host=host_of(u), first_reported_at=now,
                                           last_reported_at=now, report_count=1, crawl_state="pending",
                                           crawl_attempts=0, pages_fetched=0, media_found=0)
                                .on_conflict_do_nothing(index_elements=["url_key"])
                                .returning(ReportedUrl.__table__.c.id)).first() is not None
            ru = s.scalar(select(ReportedUrl).where(ReportedUrl.url_key == key).with_for_update()
                          .execution_options(populate_existing=True))
            if not created:
                joined += 1
                ru.report_count += 1
                ru.last_reported_at = now
                if ru.crawl_state in ("done", "failed"):  # reported again: look again, what it serves may change
                    ru.crawl_state, ru.crawl_attempts = "pending", 0
            s.add(ReportUrl(report_id=rep.id, url_id=ru.id))
        ref = rep.reference
        rid = rep.id
        audit.record(store, by, "report.received", "report", ref,
                     {"urls": len(norm), "joined": joined, "channel": channel, "seen": seen}, session=s)
    return {"reference": ref, "id": rid, "status": "received", "urls": len(norm), "joined_existing": joined,
            "meaning": MEANING["received"]}


#: Where a reporter's contact is stored, sealed with the media key (`vigie.sealed`).
CONTACT_AT = "reports.contact"


def seal_contact(settings, contact: str | None) -> str | None:
    """The contact as stored: sealed with the media key; in clear only while no key is configured (a report
    is never refused for it), until migration 0014 or `vigie.sealed.seal_existing` seals it."""
    from vigie import sealed

    return sealed.seal(settings, contact, CONTACT_AT)


def open_contact(settings, stored: str | None) -> str | None:
    """The contact for staff (and the police export); a sealed one without the right key says so."""
    from vigie import sealed
    from vigie.errors import VigieError

    try:
        return sealed.unseal(settings, stored, CONTACT_AT)
    except VigieError as exc:
        return f"(sealed: {exc.code})"


def _report(s, reference: str) -> Report:
    rep = s.scalar(select(Report).where(Report.reference == str(reference).strip().upper()))
    if rep is None:
        raise NotFound("no report with this reference", code="report_not_found")
    return rep


def public_status(store: Store, reference: str) -> dict:
    """A report's internal status, its meaning, the reason when closed: no URL, no finding. For staff and the
    intake worker: the reporter is told far less, and late (`vigie.ingest.reporter.reporter_status`)."""
    with store.sessions() as s:
        rep = _report(s, reference)
        n = len(s.scalars(select(ReportUrl.url_id).where(ReportUrl.report_id == rep.id)).all())
        return {"reference": rep.reference, "received_at": aware(rep.received_at), "status": rep.status,
                "meaning": MEANING.get(rep.status, ""), "reason": rep.reason, "urls": n,
                "closed_at": aware(rep.closed_at)}


def report_detail(store: Store, reference: str) -> dict:
    """Everything about a report for analysts: its URLs with their crawl state and what was found there."""
    with store.sessions() as s:
        rep = _report(s, reference)
        rus = s.scalars(select(ReportedUrl).join(ReportUrl, ReportUrl.url_id == ReportedUrl.id)
                        .where(ReportUrl.report_id == rep.id).order_by(ReportedUrl.id)).all()
        urls = []
        for ru in rus:
            sights = s.scalars(select(Sighting).join(SightingPage, SightingPage.sighting_id == Sighting.id)
                               .where(SightingPage.url_id == ru.id).order_by(Sighting.id)).all()
            urls.append(url_dict(ru) | {"sightings": [sighting_dict(x) for x in sights]})
        return {"reference": rep.reference, "received_at": aware(rep.received_at), "channel": rep.channel,
                "status": rep.status, "reason": rep.reason, "description": rep.description, "seen": rep.seen,
                "contact": open_contact(store.settings, rep.contact), "closed_at": aware(rep.closed_at), "urls": urls}


def url_dict(ru: ReportedUrl) -> dict:
    return {"id": ru.id, "url": ru.url, "host": ru.host, "reports": ru.report_count, "crawl_state": ru.crawl_state,
            "attempts": ru.crawl_attempts, "crawled_at": aware(ru.crawled_at), "outcome": ru.outcome,
            "error_code": ru.error_code, "error": ru.error, "pages_fetched": ru.pages_fetched,
            "media_found": ru.media_found, "first_reported_at": aware(ru.first_reported_at)}


def sighting_dict(x: Sighting) -> dict:
    return {"id": x.id, "media_url": x.media_url, "page_url": x.page_url, "host": x.host, "ip": x.ip,
            "http_status": x.http_status, "found_at": aware(x.found_at), "media_type": x.media_type,
            "size": x.size, "sha256": x.sha256, "md5": x.md5, "pdq": x.pdq, "outcome": x.outcome, "bank": x.bank,
            "category": x.category, "labels": x.labels, "distance": x.distance, "match": x.match_detail,
            "review_item_id": x.review_item_id, "error_code": x.error_code, "error": x.error, "state": x.state,
            "removed_at": aware(x.removed_at), "last_checked_at": aware(x.last_checked_at), "checks": x.checks,
            "first_notice_at": aware(x.first_notice_at), "notices": x.notices}


def list_reports(store: Store, *, status: str | None = None, limit: int = 200) -> list[dict]:
    with store.sessions() as s:
        q = select(Report).order_by(Report.id.desc()).limit(limit)
        if status:
            q = q.where(Report.status == status)
        out = []
        for rep in s.scalars(q).all():
            n = len(s.scalars(select(ReportUrl.url_id).where(ReportUrl.report_id == rep.id)).all())
            out.append({"reference": rep.reference, "received_at": aware(rep.received_at), "status": rep.status,
                        "reason": rep.reason, "urls": n, "channel": rep.channel, "seen": rep.seen})
        return out


# ---------------------------------------------------------------------------------------------- statuses


def _review_verdict(s, item_id: int | None, settings=None) -> str | None:
    """'illegal', 'not_illegal' or None (undecided) for a review item, from its cluster's confirmed verdict
    through vigie.policy (the same rule as for known material)."""
    if item_id is None:
        return None
    from vigie.policy import action_of_dict
    from vigie.store.review_models import ReviewCluster, ReviewItem

    it = s.get(ReviewItem, item_id)
    c = s.get(ReviewCluster, it.cluster_id) if it is not None and it.cluster_id is not None else None
    if c is None or c.state != "decided":
        return None
    return "illegal" if action_of_dict(c.verdict, settings).illegal else "not_illegal"


def refresh_statuses(store: Store, report_ids: list[int] | None = None, *, now: datetime | None = None,
                     statuses: tuple[str, ...] = ("received", "crawling", "in_review")) -> int:
    """Derive the status of the given reports (default: every report in one of `statuses`) from their URLs
    and sightings; returns how many changed."""
    now = _now(now)
    changed = 0
    with store.session() as s:
        q = select(Report).where(Report.status.in_(statuses))
        if report_ids is not None:
            q = select(Report).where(Report.id.in_(report_ids))
        for rep in s.scalars(q).all():
            status, reason = _derive(s, rep, getattr(store, "settings", None))
            if status != rep.status or reason != rep.reason:
                rep.status, rep.reason = status, reason
                rep.closed_at = now if status in ("founded", "unfounded") else None
                changed += 1
                s.flush()
                audit.record(store, "system", "report.status", "report", rep.reference,
                             {"status": status, "reason": reason}, at=now, session=s)
    return changed


def refresh_settled(store: Store, *, now: datetime | None = None) -> int:
    """Derive the status of every report still `received` or `crawling` whose URLs are all crawled (none
    pending or running); returns how many changed. The worker derives a round's statuses when the round ends;
    a server killed (or two servers finishing one report's URLs at once) before that leaves them behind: the
    repair pass (`vigie.repair`) brings them up to date."""
    busy = (select(ReportUrl.report_id).join(ReportedUrl, ReportedUrl.id == ReportUrl.url_id)
            .where(ReportedUrl.crawl_state.in_(("pending", "running"))))
    with store.sessions() as s:
        ids = list(s.scalars(select(Report.id).where(Report.status.in_(("received", "crawling")),
                                                     Report.id.not_in(busy))))
    changed = 0
    for i in range(0, len(ids), 500):
        changed += refresh_statuses(store, ids[i:i + 500], now=now)
    return changed


def _derive(s, rep: Report, settings=None) -> tuple[str, str | None]:
    rus = s.scalars(select(ReportedUrl).join(ReportUrl, ReportUrl.url_id == ReportedUrl.id)
                    .where(ReportUrl.report_id == rep.id)).all()
    if not rus:
        return rep.status, rep.reason
    if any(ru.crawl_state in ("pending", "running") for ru in rus):
        started = any(ru.crawl_state == "running" or ru.crawl_attempts for ru in rus)
        return ("crawling" if started else "received"), None
    ids = [ru.id for ru in rus]
    sights = s.scalars(select(Sighting).join(SightingPage, SightingPage.sighting_id == Sighting.id)
                       .where(SightingPage.url_id.in_(ids))).all()
    # What a known sighting means comes from vigie.policy alone (a "not illegal" entry founds nothing).
    from vigie.policy import action_of_dict

    known = [x for x in sights if x.outcome == "known"]
    if any(action_of_dict(x.verdict, settings).founds_report for x in known):
        return "founded", None
    unknown = [x for x in sights if x.outcome == "unknown"]
    if unknown:
        verdicts = [_review_verdict(s, x.review_item_id, settings) for x in unknown]
        if "illegal" in verdicts:
            return "founded", None
        if all(v == "not_illegal" for v in verdicts):
            return "unfounded", "analysts reviewed what was found there and did not find it illegal"
        return "in_review", None
    if known:  # every match there is on material classified not illegal
        return "unfounded", "what was found there is known and classified not illegal"
    unreadable: dict[int, int] = {}
    for x in sights:
        if x.outcome == "error":
            for p in s.scalars(select(SightingPage.url_id).where(SightingPage.sighting_id == x.id)):
                unreadable[p] = unreadable.get(p, 0) + 1
    return "unfounded", _unfounded_reason(rus, unreadable)


def _unfounded_reason(rus: list[ReportedUrl], unreadable: dict[int, int] | None = None) -> str:
    parts = []
    for ru in rus:
        n = (unreadable or {}).get(ru.id, 0)
        if ru.error_code:
            parts.append(f"{ru.url}: could not be checked ({ru.error_code}: {ru.error})")
        elif n:
            parts.append(f"{ru.url}: {n} picture(s) or video(s) there could not be checked")
        else:
            parts.append(f"{ru.url}: no picture or video was found there")
    return "; ".join(parts)


def set_crawl_state(store: Store, url_id: int, **fields) -> None:
    with store.session() as s:
        s.execute(update(ReportedUrl).where(ReportedUrl.id == url_id).values(**fields))
