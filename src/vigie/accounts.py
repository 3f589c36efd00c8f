"""Accounts: people, their sessions and the API keys of machine clients; the library the web app and CLI call.

Roles form a hierarchy, ``analyst < supervisor < admin``: a role can do everything the
roles below it can. Passwords are hashed with argon2id, are 12 characters or more and not
on the list of common passwords (`data/common_passwords.txt`). A new account (or a reset)
gets a strong one-time password (shown once) that opens the account for 24 hours and only
to choose a new password (the web app answers 403 `password_change_required` elsewhere).

Five wrong passwords in a row lock an account for fifteen minutes, each lock in a row twice
as long as the one before (settings `login_max_failures`, `login_lockout_minutes`,
`login_lockout_max_minutes`); the web app also limits attempts per address. Failures are
counted by one conditional UPDATE, so parallel attempts (several server processes, on SQLite
or PostgreSQL) all count. Every failure (wrong password, unknown name, locked account,
inactive account, expired one-time password) answers the same `bad_credentials` after the
same work (one argon2 verification), so the answer never tells whether a name exists or is
locked. Every login (good or bad), logout, account change and API key change is written to
the audit trail (`vigie.audit`).

Sessions and API keys hold a random secret the client keeps; the store keeps only its
SHA-256, which is enough to look a secret up and useless to anyone who reads the
database. The secrets are long and random, so a plain (fast) hash suffices for them,
unlike passwords.

Errors (all `VigieError`)::

    AuthError         unauthenticated   HTTP 401   no valid session or key
    ├── BadCredentials bad_credentials  HTTP 401   any failed login (never says why: locked, unknown, wrong)
    └── BadApiKey      bad_api_key      HTTP 401   unknown, malformed or revoked API key
    Forbidden         forbidden         HTTP 403   authenticated, but not allowed
    ├── PasswordChangeRequired  password_change_required  HTTP 403   a one-time password: choose your own first
    ├── ScopeMissing   scope_missing    HTTP 403   the API key lacks the scope
    └── CsrfError      csrf             HTTP 403   an unsafe request without the session's CSRF token
    RateLimited       rate_limited      HTTP 429
    WeakPassword      weak_password     HTTP 422
    BadRole / BadScope / BadUsername    HTTP 422   bad_role, bad_scope, bad_username
    UserExists        user_exists       HTTP 409
    LastAdmin         last_admin        HTTP 409   the last active admin cannot be demoted or deactivated
    UserNotFound, ApiKeyNotFound        HTTP 404   user_not_found, api_key_not_found
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import case, delete, func, or_, select, update

from vigie import audit
from vigie.errors import Conflict, InvalidInput, NotFound, VigieError
from vigie.store.account_models import ApiKey, User, WebSession
from vigie.store.db import Store

ROLES = ("analyst", "supervisor", "admin")
RANK = {r: i for i, r in enumerate(ROLES)}
MIN_PASSWORD = 12
SCOPE_RE = re.compile(r"^(match|banks:[^\s]{1,200})$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
KEY_RE = re.compile(r"^vigie_([0-9a-f]{8})_([A-Za-z0-9_-]{20,})$")

#: argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes). Tests swap in a
#: cheaper one; a hash records its own parameters, so a change here rehashes at the next login.
PASSWORD_HASHER = PasswordHasher()
_DUMMY_HASH = PASSWORD_HASHER.hash(secrets.token_urlsafe(16))  # checked for unknown users: the same timing


# ---- errors ---------------------------------------------------------------------------------------


class AuthError(VigieError):
    code = "unauthenticated"
    http_status = 401


class BadCredentials(AuthError):
    code = "bad_credentials"


class BadApiKey(AuthError):
    code = "bad_api_key"


class Forbidden(VigieError):
    code = "forbidden"
    http_status = 403


class PasswordChangeRequired(Forbidden):
    code = "password_change_required"


class ScopeMissing(Forbidden):
    code = "scope_missing"


class CsrfError(Forbidden):
    code = "csrf"


class RateLimited(VigieError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int = 60):
        super().__init__(message)
        self.retry_after = retry_after


class WeakPassword(InvalidInput):
    code = "weak_password"


class BadRole(InvalidInput):
    code = "bad_role"


class BadScope(InvalidInput):
    code = "bad_scope"


class BadUsername(InvalidInput):
    code = "bad_username"


class UserExists(Conflict):
    code = "user_exists"


class LastAdmin(Conflict):
    code = "last_admin"


class UserNotFound(NotFound):
    code = "user_not_found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


# ---- helpers --------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    """UTC always: SQLite stores the wall time without the offset, and comparisons in SQL must agree."""
    return aware(now).astimezone(UTC) if now is not None else datetime.now(UTC)


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): make them comparable with aware ones."""
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def _setting(store: Store, name: str, default):
    return getattr(store.settings, name, default)


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def role_at_least(role: str, minimum: str) -> bool:
    return RANK.get(role, -1) >= RANK[minimum]


def check_role(role: str) -> str:
    if role not in RANK:
        raise BadRole(f"role is one of {', '.join(ROLES)}")
    return role


COMMON_PASSWORDS_FILE = Path(__file__).parent / "data" / "common_passwords.txt"
_WALKS = ("abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm", "azertyuiopqsdfghjklmwxcvbn",
          "01234567890", "09876543210", "1qaz2wsx3edc4rfv5tgb", "zyxwvutsrqponmlkjihgfedcba")


@cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(x.strip().lower() for x in lines if x.strip() and not x.startswith("#"))


def _is_walk(s: str) -> bool:
    """A run along the alphabet, the digits or a keyboard row, repeated or not ("abcdefabcdef", "123456789012")."""
    if len(s) < 4:
        return False
    for unit in range(1, len(s) // 2 + 1):  # one short piece repeated ("abcabcabcabc")
        if len(s) % unit == 0 and s[:unit] * (len(s) // unit) == s:
            s = s[:unit]
            break
    return len(s) < 4 or any(s in w * 3 for w in _WALKS)


def check_password_policy(password: str, *, username: str | None = None) -> None:
    """12 characters or more, not one character repeated, not a common password (with digits or symbols
    around it), not a run along the keyboard, and not the user's name. Raises WeakPassword."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a password has at least {MIN_PASSWORD} characters")
    if password.strip() != password or len(set(password)) < 4:
        raise WeakPassword("a password has no leading or trailing spaces and is not one repeated character")
    low = password.lower()
    squeezed = re.sub(r"[^a-z0-9]", "", low)
    core = re.sub(r"^[^a-z]+|[^a-z]+$", "", low)
    common = common_passwords()
    if low in common or squeezed in common or core in common or _is_walk(squeezed) or squeezed.isdigit():
        raise WeakPassword("this password is on the list of passwords attackers try first: choose another")
    if username and len(username) >= 3 and low in (username.lower(), username.lower() * 2):
        raise WeakPassword("a password may not be the user name")


def generate_password() -> str:
    """A one-time password: 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


def hash_password(password: str) -> str:
    return PASSWORD_HASHER.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return PASSWORD_HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _user(s, username: str) -> User:
    u = s.scalar(select(User).where(User.username == username.strip().lower()))
    if u is None:
        raise UserNotFound(f"no user named {username!r}")
    return u


def _active_admins(s) -> int:
    return s.scalar(select(func.count()).select_from(User).where(User.role == "admin", User.active.is_(True))) or 0


# ---- users ----------------------------------------------------------------------------------------


def create_user(store: Store, username: str, role: str, password: str | None = None, *,
                actor: str = "system", now: datetime | None = None) -> tuple[User, str | None]:
    """A new active account. Without `password`, a one-time password is generated and returned (the only
    time it is seen); the person must then choose their own. Returns (user, one-time password or None)."""
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise BadUsername("a user name is 2 to 64 characters: lower-case letters, digits and . _ @ -")
    check_role(role)
    otp = None
    if password is None:
        otp = password = generate_password()
    else:
        check_password_policy(password, username=name)
    h = hash_password(password)
    with store.session() as s:
        if s.scalar(select(User.id).where(User.username == name)) is not None:
            raise UserExists(f"a user named {name!r} exists already")
        u = User(username=name, password_hash=h, role=role, active=True, failed_logins=0, lock_count=0,
                 must_change_password=otp is not None, otp_expires_at=_otp_expiry(store, now) if otp else None)
        s.add(u)
        s.flush()
        audit.record(store, actor, "user.create", "user", name, {"role": role}, session=s)
    return u, otp


def get_user(store: Store, username: str) -> User:
    with store.sessions() as s:
        return _user(s, username)


def list_users(store: Store) -> list[User]:
    with store.sessions() as s:
        return list(s.scalars(select(User).order_by(User.username)))


FAILED = "wrong user name or password (after several wrong tries, an account is paused for a while)"


def _otp_expiry(store: Store, now: datetime | None = None) -> datetime:
    return _now(now) + timedelta(hours=float(_setting(store, "otp_valid_hours", 24)))


def otp_expired(u: User, now: datetime | None = None) -> bool:
    """A one-time password past its 24 hours (an account made before expiries existed counts as expired)."""
    if not u.must_change_password:
        return False
    exp = aware(u.otp_expires_at)
    return exp is None or exp <= _now(now)


def lock_minutes(store: Store, lock_count: int) -> float:
    """How long the lock number `lock_count + 1` in a row lasts: the base, doubled for each lock before."""
    base = float(_setting(store, "login_lockout_minutes", 15))
    cap = float(_setting(store, "login_lockout_max_minutes", 24 * 60))
    return min(base * 2 ** min(lock_count, 30), cap)


def _count_failure(store: Store, user_id: int, now: datetime) -> tuple[int, datetime | None] | None:
    """One conditional UPDATE: count a failure unless the account is locked, and lock it (for longer each time)
    when the count reaches the limit. Returns (failures, locked_until) after it, or None when it was locked
    already (the lock is neither extended nor counted: parallel attempts during a lock change nothing)."""
    max_failures = int(_setting(store, "login_max_failures", 5))
    longest = lock_minutes(store, 30)
    until = case(*((User.lock_count == i, now + timedelta(minutes=lock_minutes(store, i))) for i in range(12)),
                 else_=now + timedelta(minutes=longest))
    full = User.failed_logins + 1 >= max_failures
    stmt = (update(User)
            .where(User.id == user_id, or_(User.locked_until.is_(None), User.locked_until <= now))
            .values(failed_logins=case((full, 0), else_=User.failed_logins + 1),
                    locked_until=case((full, until), else_=User.locked_until),
                    lock_count=case((full, User.lock_count + 1), else_=User.lock_count))
            .returning(User.failed_logins, User.locked_until)
            .execution_options(synchronize_session=False))
    with store.session() as s:
        row = s.execute(stmt).first()
    return None if row is None else (int(row[0]), aware(row[1]))


def _failed(store: Store, name: str, now: datetime, detail: dict) -> BadCredentials:
    """Audit a failed login (always, in its own transaction: the count above is committed already)."""
    audit.record(store, name or "-", "login.failed", "user", name or None, detail, at=now)
    return BadCredentials(FAILED)


def authenticate(store: Store, username: str, password: str, *, now: datetime | None = None) -> User:
    """The user if the password is right; raises BadCredentials otherwise, whatever the reason, after the
    same work (one argon2 verification), and audits every failure with its reason."""
    now = _now(now)
    name = (username or "").strip().lower()[:64]
    with store.sessions() as s:
        u = s.scalar(select(User).where(User.username == name)) if name else None
    if u is None:
        _verify(_DUMMY_HASH, password or "")
        raise _failed(store, name, now, {"reason": "unknown_user"})
    locked = aware(u.locked_until)
    if locked is not None and locked > now:  # checked on a dummy: a right password must not be told either
        _verify(_DUMMY_HASH, password or "")
        raise _failed(store, name, now, {"reason": "locked", "locked_until": locked.isoformat()})
    good = _verify(u.password_hash, password or "")
    reason = ("bad_password" if not good else "inactive" if not u.active
              else "otp_expired" if otp_expired(u, now) else None)
    if reason is not None:
        counted = _count_failure(store, u.id, now)
        detail: dict = {"reason": reason if counted is not None else "locked"}
        if counted is not None:
            detail["failures"] = counted[0]
            if counted[1] is not None and counted[1] > now:
                detail["locked_until"] = counted[1].isoformat()
        raise _failed(store, name, now, detail)
    values: dict = {"failed_logins": 0, "locked_until": None, "lock_count": 0}
    if PASSWORD_HASHER.check_needs_rehash(u.password_hash):
        values["password_hash"] = hash_password(password)
    with store.session() as s:  # conditional too: a lock taken meanwhile by parallel attempts holds
        done = s.execute(update(User).where(User.id == u.id, or_(User.locked_until.is_(None),
                                                                   User.locked_until <= now))
                         .values(**values).execution_options(synchronize_session=False)).rowcount
        if done:
            audit.record(store, name, "login.ok", "user", name, at=now, session=s)
    if not done:
        raise _failed(store, name, now, {"reason": "locked"})
    with store.sessions() as s:
        return s.get(User, u.id)


def set_password(store: Store, username: str, password: str, *, actor: str, current: str | None = None,
                 keep_session: str | None = None, now: datetime | None = None) -> None:
    """Change a password (checking `current` when given: a person changing their own). Every session of the
    user ends except `keep_session` (a session token: the one the change was made from).

    Set by anyone else (an admin's reset, `vigie user reset-password`), it is a one-time password: it opens
    the account for `otp_valid_hours`, only to choose a new one. Chosen by the person, it must pass the policy."""
    h = hash_password(password)
    with store.session() as s:
        u = _user(s, username)
        one_time = actor != u.username
        if not one_time:
            check_password_policy(password, username=u.username)
        if current is not None and not _verify(u.password_hash, current):
            raise BadCredentials("the current password is wrong")
        if current is not None and current == password:
            raise WeakPassword("the new password is the same as the current one")
        u.password_hash, u.must_change_password = h, one_time
        u.otp_expires_at = _otp_expiry(store, now) if one_time else None
        keep = sha256_hex(keep_session) if keep_session else None
        q = delete(WebSession).where(WebSession.user_id == u.id)
        if keep:
            q = q.where(WebSession.id != keep)
        s.execute(q)
        audit.record(store, actor, "user.password", "user", u.username, session=s)


def set_role(store: Store, username: str, role: str, *, actor: str) -> User:
    check_role(role)
    with store.session() as s:
        u = _user(s, username)
        old = u.role
        if old == "admin" and role != "admin" and u.active and _active_admins(s) <= 1:
            raise LastAdmin("the last active admin cannot be demoted: make another admin first")
        u.role = role
        audit.record(store, actor, "user.role", "user", u.username, {"from": old, "to": role}, session=s)
    return u


def deactivate(store: Store, username: str, *, actor: str) -> User:
    """Close an account: it cannot log in and all its sessions end. The row stays (the audit trail names it)."""
    with store.session() as s:
        u = _user(s, username)
        if u.role == "admin" and u.active and _active_admins(s) <= 1:
            raise LastAdmin("the last active admin cannot be deactivated")
        u.active = False
        n = s.execute(delete(WebSession).where(WebSession.user_id == u.id)).rowcount
        audit.record(store, actor, "user.deactivate", "user", u.username, {"sessions_ended": n}, session=s)
    return u


def reactivate(store: Store, username: str, *, actor: str) -> User:
    with store.session() as s:
        u = _user(s, username)
        u.active, u.failed_logins, u.locked_until, u.lock_count = True, 0, None, 0
        audit.record(store, actor, "user.reactivate", "user", u.username, session=s)
    return u


def set_wellbeing(store: Store, username: str, overrides: dict | None, *, actor: str) -> User:
    """Per-person overrides of the review pages' wellbeing defaults; None returns to the defaults."""
    with store.session() as s:
        u = _user(s, username)
        u.wellbeing = dict(overrides) if overrides else None
        audit.record(store, actor, "user.wellbeing", "user", u.username, {"overrides": u.wellbeing}, session=s)
    return u


def logout_everywhere(store: Store, username: str, *, actor: str) -> int:
    """End every session of a user (a lost laptop, a suspicion); returns how many ended."""
    with store.session() as s:
        u = _user(s, username)
        n = s.execute(delete(WebSession).where(WebSession.user_id == u.id)).rowcount
        audit.record(store, actor, "user.logout_everywhere", "user", u.username, {"sessions_ended": n}, session=s)
    return n


def ensure_admin(store: Store) -> str | None:
    """First start: when no account exists, create `admin` and return its one-time password (to be shown
    once, by `vigie serve`). Returns None when accounts exist."""
    with store.sessions() as s:
        if s.scalar(select(func.count()).select_from(User)):
            return None
    try:
        _u, otp = create_user(store, "admin", "admin", actor="system")
    except UserExists:  # another process won the race
        return None
    return otp


# ---- sessions -------------------------------------------------------------------------------------


def new_session(store: Store, user: User, *, now: datetime | None = None) -> tuple[str, WebSession]:
    """A session for a user who just logged in: (token for the cookie, the stored session)."""
    now = _now(now)
    hours = float(_setting(store, "session_max_hours", 12))
    token = secrets.token_urlsafe(32)
    ws = WebSession(id=sha256_hex(token), user_id=user.id, created_at=now, last_seen=now,
                    expires_at=now + timedelta(hours=hours), csrf_token=secrets.token_urlsafe(32))
    with store.session() as s:
        s.add(ws)
    return token, ws


def session_user(store: Store, token: str | None, now: datetime | None = None, *, touch: bool = True
                 ) -> tuple[User, WebSession] | None:
    """The (user, session) a cookie token opens, or None: unknown, expired (absolute or idle) or inactive user.
    An expired session is deleted; `last_seen` (the idle timer) is written at most once a minute, and only when
    `touch`: a request the page makes by itself (heartbeat, polls) is no action of the person's."""
    if not token or len(token) > 200:
        return None
    now = _now(now)
    idle = timedelta(minutes=float(_setting(store, "session_idle_minutes", 30)))
    with store.session() as s:
        ws = s.get(WebSession, sha256_hex(token))
        if ws is None:
            return None
        u = s.get(User, ws.user_id)
        if u is None or not u.active or aware(ws.expires_at) <= now or aware(ws.last_seen) + idle <= now \
                or otp_expired(u, now):
            s.delete(ws)
            return None
        if touch and now - aware(ws.last_seen) >= timedelta(minutes=1):
            ws.last_seen = now
    return u, ws


def end_session(store: Store, token: str | None, *, actor: str | None = None) -> bool:
    """Log out one session; audited when it existed."""
    if not token:
        return False
    with store.session() as s:
        ws = s.get(WebSession, sha256_hex(token))
        if ws is None:
            return False
        u = s.get(User, ws.user_id)
        s.delete(ws)
        name = u.username if u else "-"
        audit.record(store, actor or name, "logout", "user", name, session=s)
    return True


def count_sessions(store: Store, username: str) -> int:
    with store.sessions() as s:
        u = _user(s, username)
        return s.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id == u.id)) or 0


# ---- API keys -------------------------------------------------------------------------------------


def check_scopes(scopes: list[str]) -> list[str]:
    out = []
    for sc in scopes:
        sc = sc.strip()
        if not sc:
            continue
        if not SCOPE_RE.match(sc):
            raise BadScope(f"unknown scope {sc!r}: scopes are match and banks:NAME")
        if sc not in out:
            out.append(sc)
    if not out:
        raise BadScope("an API key needs at least one scope")
    return out


def create_api_key(store: Store, name: str, scopes: list[str], created_by: str, *,
                   rate_limit_per_minute: int | None = None, now: datetime | None = None) -> tuple[ApiKey, str]:
    """A new key: (the stored record, the secret). The secret is returned here only and never stored."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("an API key's name is 1 to 200 characters")
    scopes = check_scopes(scopes)
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise InvalidInput("the rate limit is at least 1 request a minute")
    now = _now(now)
    with store.session() as s:
        scopes = default_bank_scopes(s, scopes)
        while True:
            prefix = secrets.token_hex(4)
            if s.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
                break
        secret = f"vigie_{prefix}_{secrets.token_urlsafe(32)}"
        k = ApiKey(name=name, prefix=prefix, key_hash=sha256_hex(secret), scopes=scopes, created_by=created_by,
                   created_at=now, rate_limit_per_minute=rate_limit_per_minute)
        s.add(k)
        s.flush()
        audit.record(store, created_by, "api_key.create", "api_key", prefix, {"name": name, "scopes": scopes},
                     at=now, session=s)
    return k, secret


def list_api_keys(store: Store) -> list[ApiKey]:
    with store.sessions() as s:
        return list(s.scalars(select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())))


def check_api_key(store: Store, secret: str, needed_scope: str | None = None, *,
                  now: datetime | None = None) -> ApiKey:
    """The live key for `secret`, checked to hold `needed_scope`; raises BadApiKey (401) or ScopeMissing (403).
    `last_used_at` is written at most once a minute."""
    m = KEY_RE.match((secret or "").strip())
    if not m:
        raise BadApiKey("not a Vigie API key")
    now = _now(now)
    with store.session() as s:
        k = s.scalar(select(ApiKey).where(ApiKey.prefix == m.group(1)))
        if k is None or not hmac.compare_digest(k.key_hash, sha256_hex(secret.strip())) or k.revoked_at is not None:
            raise BadApiKey("unknown or revoked API key")
        if needed_scope is not None and needed_scope not in (k.scopes or []):
            raise ScopeMissing(f"this API key lacks the scope {needed_scope!r}")
        if k.last_used_at is None or now - aware(k.last_used_at) >= timedelta(minutes=1):
            k.last_used_at = now
    return k


#: The scope a key gets when no bank is left for it by default: it names no bank, so it matches nothing.
NO_BANKS = "banks:"


def own_banks(conn) -> list[str]:
    """The banks a `match` key named no bank for gets: this hotline's own, neither received from a partner
    (a subscription's bank) nor offered to partners (published; naming one also lets a key pull its feed).
    `conn` is a session or a connection (migration 0014 narrows older keys with it)."""
    import sqlalchemy as sa

    banks = sa.table("banks", sa.column("id", sa.Integer), sa.column("name", sa.String))
    subs = sa.table("subscriptions", sa.column("local_bank", sa.String))
    pubs = sa.table("published_banks", sa.column("bank_id", sa.Integer))
    q = (sa.select(banks.c.name).where(banks.c.name.not_in(sa.select(subs.c.local_bank)),
                                       banks.c.id.not_in(sa.select(pubs.c.bank_id))).order_by(banks.c.name))
    return list(conn.execute(q).scalars())


def default_bank_scopes(conn, scopes: list[str]) -> list[str]:
    """`scopes`, with a `match` key that names no bank narrowed to `own_banks` now, written out as
    `banks:NAME` scopes (or `NO_BANKS`): a key never sees every bank, partners' included, by default."""
    if "match" not in scopes or any(sc.startswith("banks:") for sc in scopes):
        return scopes
    return scopes + ([f"banks:{n}" for n in own_banks(conn)] or [NO_BANKS])


def key_banks(key: ApiKey) -> list[str] | None:
    """The banks a key is narrowed to by its `banks:NAME` scopes (an empty name, `NO_BANKS`, is no bank);
    None only for a key with no bank scope at all (before 0014 narrowed them, or a key without `match`)."""
    names = [sc.split(":", 1)[1] for sc in key.scopes or [] if sc.startswith("banks:")]
    return names or None


def revoke_api_key(store: Store, key_id: int, *, actor: str, now: datetime | None = None) -> ApiKey:
    now = _now(now)
    with store.session() as s:
        k = s.get(ApiKey, key_id)
        if k is None:
            raise ApiKeyNotFound(f"no API key with id {key_id}")
        if k.revoked_at is None:
            k.revoked_at = now
            audit.record(store, actor, "api_key.revoke", "api_key", k.prefix, {"name": k.name}, at=now, session=s)
    return k
