"""Takedown notices: who hosts a sighting of known material, and an e-mail to them until it is gone.

Providers are matched by the longest domain suffix of the media host first (a CDN name is
more telling than the address it resolves to today), then by the most specific network
holding the IP. One notice a provider a run, listing every due sighting: providers ask for
batches, and one e-mail is easier to act on than fifty. A notice carries URLs and hashes
only, never media. Sightings stay due until the crawler (another module) marks them removed;
a noticed one is due again `takedown_renotice_hours` later, and a failed send is not a
notice, so it is simply tried again on the next run.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import smtplib
import ssl
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import func, or_, select

from vigie import audit
from vigie.accounts import aware
from vigie.errors import Conflict, InvalidInput, NotFound, VigieError
from vigie.settings import Settings
from vigie.store.db import Store
from vigie.store.intake_models import Notice, NoticeItem, Provider, Sighting

SCHEMA = "vigie.notice/1"
TEMPLATES = Path(__file__).parent / "templates"
EMAIL_RE = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")
LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
LANG_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
EDITABLE = ("contact_email", "domains", "networks", "asns", "country", "partner_hotline", "language", "active")

Mailer = Callable[[EmailMessage, Settings], None]


# ---------------------------------------------------------------------------------------------- registry


def _printable(value) -> bool:
    """No control characters: they break e-mail headers, and PostgreSQL refuses NUL."""
    return all(c.isprintable() for c in str(value))


def _clean_email(value: str) -> str:
    v = (value or "").strip()
    if len(v) > 320 or not EMAIL_RE.match(v) or not _printable(v):
        raise InvalidInput(f"not an e-mail address: {value!r}", code="bad_email")
    return v


def _clean_domain(value: str) -> str:
    d = str(value).strip().lower().strip(".")
    if d.startswith("*."):
        d = d[2:]
    try:
        d = d.encode("idna").decode("ascii") if d else d
    except UnicodeError:
        d = ""
    if not d or len(d) > 253 or not all(LABEL_RE.match(x) for x in d.split(".")):
        raise InvalidInput(f"not a domain name: {value!r}", code="bad_domain")
    return d


def _clean_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(str(value).strip(), strict=False))
    except ValueError:
        raise InvalidInput(f"not an IP network (CIDR such as 192.0.2.0/24): {value!r}", code="bad_network") from None


def _clean_asn(value) -> int:
    v = str(value).strip().upper().removeprefix("AS")
    if not v.isdigit() or not 0 < int(v) < 2**32:
        raise InvalidInput(f"not an AS number: {value!r}", code="bad_asn")
    return int(v)


def _clean_country(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    v = str(value).strip().upper()
    if len(v) != 2 or not v.isascii() or not v.isalpha():
        raise InvalidInput(f"a country is two letters (ISO 3166-1 alpha-2): {value!r}", code="bad_country")
    return v


def _clean_language(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 16 or not LANG_RE.match(value):
        raise InvalidInput(f"not a language tag (such as en or fr-BE): {value!r}", code="bad_language")
    return value


def _clean_name(value: str) -> str:
    v = (value or "").strip()
    if not v or len(v) > 200 or not _printable(v):
        raise InvalidInput("a provider name is 1 to 200 characters", code="bad_name")
    return v


def _clean_partner(value: str | None) -> str | None:
    v = str(value or "").strip()
    if len(v) > 200 or not _printable(v):
        raise InvalidInput("a partner hotline is a name of at most 200 characters", code="bad_name")
    return v or None


def _clean_fields(fields: dict) -> dict:
    cleaners = {"contact_email": _clean_email, "country": _clean_country, "language": _clean_language,
                "domains": lambda v: sorted(set(map(_clean_domain, v or ()))),
                "networks": lambda v: sorted(set(map(_clean_network, v or ()))),
                "asns": lambda v: sorted(set(map(_clean_asn, v or ()))),
                "partner_hotline": _clean_partner,
                "active": bool}
    return {k: cleaners[k](v) for k, v in fields.items()}


def provider_dict(p: Provider) -> dict:
    return {"id": p.id, "name": p.name, "contact_email": p.contact_email, "domains": list(p.domains or []),
            "networks": list(p.networks or []), "asns": list(p.asns or []), "country": p.country,
            "partner_hotline": p.partner_hotline, "language": p.language, "active": p.active,
            "created_at": aware(p.created_at)}


def add_provider(store: Store, name: str, contact_email: str, *, domains: Iterable[str] = (),
                 networks: Iterable[str] = (), asns: Iterable = (), country: str | None = None,
                 partner_hotline: str | None = None, language: str | None = None, by: str) -> dict:
    """Register a provider; every value is checked first, so a typo never sends a notice to nobody."""
    name = _clean_name(name)
    vals = _clean_fields({"contact_email": contact_email, "domains": domains, "networks": networks, "asns": asns,
                          "country": country, "partner_hotline": partner_hotline, "language": language})
    with store.session() as s:
        if s.scalar(select(Provider.id).where(Provider.name == name)) is not None:
            raise Conflict(f"a provider named {name!r} exists already", code="provider_exists")
        p = Provider(name=name, active=True, **vals)
        s.add(p)
        s.flush()
        out = provider_dict(p)
        audit.record(store, by, "provider.add", "provider", name, {**vals}, session=s)
    return out


def _get(s, name: str) -> Provider:
    p = s.scalar(select(Provider).where(Provider.name == name))
    if p is None:
        raise NotFound(f"no provider named {name!r}", code="provider_not_found")
    return p


def update_provider(store: Store, name: str, /, *, by: str, **changes) -> dict:
    """Change some fields (those of `EDITABLE`); the audit record keeps the old and new values."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a provider", code="bad_field")
    vals = _clean_fields(changes)
    with store.session() as s:
        p = _get(s, name)
        before = {k: getattr(p, k) for k in vals}
        for k, v in vals.items():
            setattr(p, k, v)
        s.flush()
        out = provider_dict(p)
        audit.record(store, by, "provider.update", "provider", p.name, {"before": before, "after": vals}, session=s)
    return out


def remove_provider(store: Store, name: str, *, by: str) -> dict:
    """Deactivate, never delete: past notices keep pointing at who received them."""
    with store.session() as s:
        p = _get(s, name)
        p.active = False
        out = provider_dict(p)
        audit.record(store, by, "provider.remove", "provider", p.name, {}, session=s)
    return out


def list_providers(store: Store) -> list[dict]:
    with store.sessions() as s:
        return [provider_dict(p) for p in s.scalars(select(Provider).order_by(Provider.name))]


def _host_of(host: str) -> str:
    h = (host or "").strip().lower()
    if h.startswith("["):  # [v6]:port
        return h[1:].split("]", 1)[0]
    if h.count(":") == 1:
        h = h.split(":", 1)[0]
    return h.rstrip(".")


def _ip(value: str | None):
    try:
        return ipaddress.ip_address(value) if value else None
    except ValueError:
        return None


def match_provider(providers: Iterable[Provider], host: str, ip: str | None, asn: int | None = None
                   ) -> Provider | None:
    """The provider among `providers` (already loaded) for `host`/`ip`; see `find_provider`. `asn`: the AS of
    the IP (from `vigie.actions.asn`), used when neither a domain nor a network matched."""
    providers = list(providers)
    h = _host_of(host)
    addr = _ip(ip) or _ip(h)
    best, best_len, best_net, best_prefix = None, -1, None, -1
    for p in providers:
        for d in p.domains or ():
            if (h == d or h.endswith("." + d)) and len(d) > best_len:
                best, best_len = p, len(d)
        if addr is None:
            continue
        for n in p.networks or ():
            try:
                net = ipaddress.ip_network(n, strict=False)
            except ValueError:
                continue
            if net.version == addr.version and addr in net and net.prefixlen > best_prefix:
                best_net, best_prefix = p, net.prefixlen
    if best is not None or best_net is not None:
        return best if best is not None else best_net
    if asn is not None:
        for p in providers:
            if asn in (p.asns or ()):
                return p
    return None


def asn_of(settings, ip: str | None) -> int | None:
    """The AS number of `ip` from the operator's table (`VIGIE_ASN_TABLE`), or None."""
    from vigie.actions.asn import table

    t = table(getattr(settings, "asn_table", None)) if settings is not None else None
    return t.lookup(ip) if t is not None and ip else None


def find_provider(store: Store, host: str, ip: str | None = None) -> Provider | None:
    """The active provider of a host: longest domain suffix first, else the most specific network of the IP,
    else the AS of the IP (when an AS table is configured)."""
    with store.sessions() as s:
        return match_provider(list(s.scalars(select(Provider).where(Provider.active.is_(True)))), host, ip,
                              asn_of(getattr(store, "settings", None), ip))


# ---------------------------------------------------------------------------------------------- what is due


def _utc(now: datetime | None) -> datetime:
    now = now or datetime.now(UTC)
    return (now if now.tzinfo else now.replace(tzinfo=UTC)).astimezone(UTC)


def due_sightings(store: Store, now: datetime | None, settings: Settings) -> list[Sighting]:
    """Known, still online, and noticeable by its verdict (vigie.policy: never "not illegal"): never noticed,
    or noticed `takedown_renotice_hours` ago or longer."""
    from vigie.policy import action_of_dict

    now = _utc(now)
    cutoff = now - timedelta(hours=settings.takedown_renotice_hours)
    with store.sessions() as s:
        rows = s.scalars(select(Sighting).where(Sighting.outcome == "known", Sighting.state == "online",
                                                or_(Sighting.last_notice_at.is_(None),
                                                    Sighting.last_notice_at <= cutoff))
                         .order_by(Sighting.id))
        return [x for x in rows if (x.last_notice_at is None or aware(x.last_notice_at) <= cutoff)
                and action_of_dict(x.verdict, settings).notice]


# ---------------------------------------------------------------------------------------------- the notice


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=False, undefined=StrictUndefined,
                       keep_trailing_newline=True)


def _iso(dt: datetime | None) -> str | None:
    return aware(dt).astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z") if dt else None


def new_reference(now: datetime) -> str:
    return f"VN-{now:%Y%m%d}-{secrets.token_hex(4).upper()}"


def render_notice(provider: Provider, sightings: list[Sighting], *, settings: Settings, kind: str, reference: str,
                  now: datetime) -> tuple[str, str, dict]:
    """(subject, text for people, JSON for machines). Hashes and URLs only: there is no media to attach."""
    if kind not in ("first", "renotice"):
        raise InvalidInput(f"a notice is first or renotice, not {kind!r}", code="bad_kind")
    items = [{"media_url": x.media_url, "page_url": x.page_url, "first_seen": _iso(x.found_at), "sha256": x.sha256,
              "md5": x.md5, "pdq": x.pdq, "category": x.category, "first_noticed": _iso(x.first_notice_at)}
             for x in sightings]
    doc = {"schema": SCHEMA, "reference": reference, "kind": kind, "hotline": settings.hotline_name,
           "provider": {"name": provider.name, "contact_email": provider.contact_email},
           "items": items, "sent_at": _iso(now),
           "renotice_hours": settings.takedown_renotice_hours}
    hours = f"{settings.takedown_renotice_hours:g}"
    text = _env().get_template("notice.txt").render(hotline=settings.hotline_name, provider=provider, items=items,
                                                    kind=kind, reference=reference, sent_at=doc["sent_at"],
                                                    renotice_hours=hours)
    what = "Reminder: takedown notice" if kind == "renotice" else "Takedown notice"
    subject = f"[{settings.hotline_name}] {what} {reference}: {len(items)} item(s) on {provider.name}"
    return subject, text, doc


def build_message(settings: Settings, recipient: str, subject: str, text: str, doc: dict, reference: str,
                  now: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.notice_from
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Date"] = format_datetime(now)
    domain = settings.notice_from.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = make_msgid(idstring=reference, domain=domain)
    msg.set_content(text)
    msg.add_attachment(json.dumps(doc, indent=2, ensure_ascii=False).encode(), maintype="application",
                       subtype="json", filename=f"{reference}.json")
    return msg


def smtp_send(msg: EmailMessage, settings: Settings) -> None:
    """Hand one message to the configured SMTP server; every failure becomes one VigieError with a code."""
    if not settings.smtp_host:
        raise VigieError("no SMTP server is configured (VIGIE_SMTP_HOST): notice not sent",
                         code="smtp_not_configured")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_username:
                pw = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
                smtp.login(settings.smtp_username, pw)
            smtp.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise VigieError(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {type(exc).__name__}: {exc}",
                         code="smtp_failed") from None


# ---------------------------------------------------------------------------------------------- sending


def _group(store: Store, due: list[Sighting]) -> tuple[dict[int, tuple[Provider, list[Sighting]]], int]:
    """Sightings by provider; a sighting without one gets it looked up (and kept) or is counted as orphan.
    Material illegal only under some national laws goes only to providers in those countries (vigie.policy);
    a sighting hosted elsewhere is left out of notices (it stays on record, and in the police export)."""
    from vigie.policy import action_of_dict

    settings = getattr(store, "settings", None)
    groups: dict[int, tuple[Provider, list[Sighting]]] = {}
    orphans = 0
    with store.session() as s:
        providers = {p.id: p for p in s.scalars(select(Provider))}
        active = [p for p in providers.values() if p.active]
        for x in due:
            p = providers.get(x.provider_id) if x.provider_id is not None else None
            if p is None or not p.active:
                p = match_provider(active, x.host, x.ip, asn_of(getattr(store, "settings", None), x.ip))
                if p is not None and p.id != x.provider_id:
                    s.get(Sighting, x.id).provider_id = p.id
                    x.provider_id = p.id
            if p is None:
                orphans += 1
                continue
            if not action_of_dict(x.verdict, settings).may_notice(p.country):
                continue  # national material hosted outside the countries where it is illegal
            groups.setdefault(p.id, (p, []))[1].append(x)
    return groups, orphans


#: After a failed notice, a provider waits this long before the next try (the worker runs every 30 s).
RETRY_AFTER_FAILURE = timedelta(minutes=15)


def _failed_recently(store: Store, now: datetime) -> set[int]:
    """Providers whose latest notice failed less than RETRY_AFTER_FAILURE ago."""
    at = func.coalesce(Notice.last_attempt_at, Notice.created_at)
    with store.sessions() as s:
        rows = s.execute(select(Notice.provider_id, Notice.status, at)
                         .where(at > now - RETRY_AFTER_FAILURE)
                         .order_by(at, Notice.id)).all()
    last: dict[int, str] = {}
    for pid, status, _at in rows:
        if pid is not None:
            last[pid] = status
    return {pid for pid, status in last.items() if status == "failed"}


def send_notices(store: Store, settings: Settings, now: datetime | None = None, *, by: str = "system",
                 mailer: Mailer | None = None) -> dict:
    """One notice per provider for every due sighting. `mailer` replaces SMTP in unit tests of failures."""
    real_time = now is None  # times are taken when each notice goes out, not at the round's start
    now = _utc(now)
    with store.exclusive("takedown-notices") as mine:
        if not mine:  # another worker is sending right now: it covers what is due, never twice
            return {"due": 0, "sent": 0, "failed": 0, "no_provider": 0, "deferred": 0, "sightings": 0,
                    "notices": [], "busy": True}
        return _send_notices(store, settings, now, by, mailer, real_time, mine)


def _send_notices(store: Store, settings: Settings, now: datetime, by: str, mailer, real_time: bool = False,
                  lock=None) -> dict:
    send = mailer or smtp_send
    due = due_sightings(store, now, settings)
    groups, orphans = _group(store, due)
    counts = {"due": len(due), "sent": 0, "failed": 0, "no_provider": orphans, "deferred": 0, "sightings": 0,
              "notices": []}
    waiting = _failed_recently(store, now)
    for provider, items in groups.values():
        if provider.id in waiting:  # its last try failed moments ago: do not pile up failed notices
            counts["deferred"] += 1
            continue
        if lock is not None:  # its database session ended: another worker may be sending these very notices
            lock.check()
        res = _notify(store, settings, provider, items, datetime.now(UTC) if real_time else now, by, send)
        counts["notices"].append(res)
        counts[res["status"]] += 1
        if res["status"] == "sent":
            counts["sightings"] += len(items)
    return counts


def _failed_notice_for(store: Store, provider_id: int, sighting_ids: list[int]) -> tuple[int, str] | None:
    """(id, reference) of the provider's latest notice if it failed and covered exactly these sightings."""
    with store.sessions() as s:
        last = s.scalars(select(Notice).where(Notice.provider_id == provider_id)
                         .order_by(Notice.id.desc()).limit(1)).first()
        if last is None or last.status != "failed":
            return None
        covered = sorted(s.scalars(select(NoticeItem.sighting_id).where(NoticeItem.notice_id == last.id)))
        return (last.id, last.reference) if covered == sorted(sighting_ids) else None


def _notify(store: Store, settings: Settings, provider: Provider, items: list[Sighting], now: datetime, by: str,
            send: Mailer) -> dict:
    kind = "renotice" if all(x.notices for x in items) else "first"
    retry = _failed_notice_for(store, provider.id, [x.id for x in items])
    reference = retry[1] if retry else new_reference(now)
    subject, text, doc = render_notice(provider, items, settings=settings, kind=kind, reference=reference, now=now)
    msg = build_message(settings, provider.contact_email, subject, text, doc, reference, now)
    # Recorded before the SMTP exchange (status `sending`), so a crash during it leaves a trace that
    # `repair_notices` turns into a failed notice to try again, instead of a notice nobody knows about. A failed
    # notice is tried again in its own row (same reference, `attempts` + 1), never as a new one.
    with store.session() as s:
        if retry:
            n = s.get(Notice, retry[0])
            n.status, n.error, n.subject, n.body_text, n.body_json = "sending", None, subject, text, doc
            n.message_id, n.attempts, n.last_attempt_at = msg["Message-ID"], (n.attempts or 1) + 1, now
            nid = n.id
        else:
            n = Notice(reference=reference, provider_id=provider.id, recipient=provider.contact_email, kind=kind,
                       created_at=now, sent_at=None, status="sending", error=None, subject=subject,
                       body_text=text, body_json=doc, message_id=msg["Message-ID"], attempts=1, last_attempt_at=now)
            s.add(n)
            s.flush()
            nid = n.id
            for x in items:
                s.add(NoticeItem(notice_id=nid, sighting_id=x.id))
    error = code = None
    try:
        send(msg, settings)
    except VigieError as exc:
        code, error = exc.code, f"{exc.code}: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - one provider's failure never stops the others
        code, error = "smtp_failed", f"smtp_failed: {type(exc).__name__}: {exc}"
    status = "failed" if error else "sent"
    sent_at = None if error else now
    with store.session() as s:
        n = s.get(Notice, nid)
        n.status, n.error, n.sent_at = status, error, sent_at
        n.message_id = None if error else msg["Message-ID"]
        for x in items:
            if not error:
                row = s.get(Sighting, x.id)
                row.first_notice_at = row.first_notice_at or sent_at
                row.last_notice_at = sent_at
                row.notices = (row.notices or 0) + 1
        audit.record(store, by, f"takedown.notice_{status}", "notice", n.id,
                     {"reference": reference, "provider": provider.name, "recipient": provider.contact_email,
                      "kind": kind, "sightings": [x.id for x in items], "error_code": code}, at=sent_at or now,
                     session=s)
    return {"id": nid, "reference": reference, "provider": provider.name, "recipient": provider.contact_email,
            "kind": kind, "status": status, "error_code": code, "error": error, "sightings": [x.id for x in items]}


# ---------------------------------------------------------------------------------------------- reading


def sighting_rows(store: Store, now: datetime | None = None, *, state: str | None = None,
                  limit: int = 500) -> list[dict]:
    """Known sightings, newest first, with their provider and how long they have been (or were) online."""
    now = _utc(now)
    with store.sessions() as s:
        names = dict(s.execute(select(Provider.id, Provider.name)).all())
        q = select(Sighting).where(Sighting.outcome == "known").order_by(Sighting.found_at.desc(), Sighting.id.desc())
        if state:
            q = q.where(Sighting.state == state)
        out = []
        for x in s.scalars(q.limit(limit)):
            end = aware(x.removed_at) or now
            out.append({"id": x.id, "media_url": x.media_url, "page_url": x.page_url, "host": x.host, "ip": x.ip,
                        "state": x.state, "category": x.category, "provider": names.get(x.provider_id),
                        "found_at": aware(x.found_at), "removed_at": aware(x.removed_at),
                        "first_notice_at": aware(x.first_notice_at), "last_notice_at": aware(x.last_notice_at),
                        "notices": x.notices or 0,
                        "hours_online": round(max(0.0, (end - aware(x.found_at)).total_seconds()) / 3600, 1)})
        return out


def notice_dict(n: Notice, provider: str | None, sighting_ids: list[int], *, bodies: bool = False) -> dict:
    d = {"id": n.id, "reference": n.reference, "provider": provider, "recipient": n.recipient, "kind": n.kind,
         "status": n.status, "error": n.error, "created_at": aware(n.created_at), "sent_at": aware(n.sent_at),
         "subject": n.subject, "message_id": n.message_id, "sightings": sighting_ids}
    if bodies:
        d |= {"body_text": n.body_text, "body_json": n.body_json}
    return d


def notice_rows(store: Store, *, limit: int = 200, sighting_ids: Iterable[int] | None = None,
                bodies: bool = False) -> list[dict]:
    """Notices newest first; narrowed to those covering `sighting_ids` when given."""
    with store.sessions() as s:
        names = dict(s.execute(select(Provider.id, Provider.name)).all())
        q = select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc())
        if sighting_ids is not None:
            ids = list(sighting_ids)
            if not ids:
                return []
            q = q.where(Notice.id.in_(select(NoticeItem.notice_id).where(NoticeItem.sighting_id.in_(ids))))
        notices = list(s.scalars(q.limit(limit)))
        items: dict[int, list[int]] = {}
        if notices:
            for nid, sid in s.execute(select(NoticeItem.notice_id, NoticeItem.sighting_id)
                                      .where(NoticeItem.notice_id.in_([n.id for n in notices]))
                                      .order_by(NoticeItem.sighting_id)):
                items.setdefault(nid, []).append(sid)
        return [notice_dict(n, names.get(n.provider_id), items.get(n.id, []), bodies=bodies) for n in notices]


#: A notice still `sending` this long after it was recorded was interrupted (its sender died).
SENDING_STALE = timedelta(minutes=10)


def repair_notices(store: Store, now: datetime | None = None, *, by: str = "system") -> int:
    """Notices left `sending` by a sender that died become `failed` (interrupted), so their sightings are
    noticed again at the next round; the provider may get the same notice twice, never none. Returns how many."""
    now = _utc(now)
    with store.session() as s:
        stale = list(s.scalars(select(Notice).where(Notice.status == "sending",
                                                    Notice.created_at <= now - SENDING_STALE)))
        for n in stale:
            n.status = "failed"
            n.error = "interrupted: the sender stopped during the send; it may or may not have been delivered"
            audit.record(store, by, "takedown.notice_interrupted", "notice", n.id, {"reference": n.reference},
                         session=s)
    return len(stale)

