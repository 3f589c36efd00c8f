"""Analyst wellbeing: gentle display by default, deliberate reveals, exposure limits and breaks.

A supervisor sets the team's policy; each analyst may make their own gentler, never
harsher (`effective_policy` clamps every field). Media are shown small, blurred and in
greyscale; each reveal step (colour, sharpness, full size, playing a video) is one
deliberate action on one item, and everything falls back when the item is left.

Exposure is counted in seconds of revealed media (`ExposureTracker`), on the server's clock,
never on what the browser reports. A reveal event opens when the server serves revealed pixels
(`start_reveal`, from `view_item`) and ends at the first of: the next request of that analyst
that hides or leaves it (the plain preview of the same item, a reveal of another item), the
page's `stop_reveal`, a lock, or `REVEAL_TIMEOUT_S` after its last sign of life (the page's
heartbeat every 30 s; a closed tab stops it), so a reveal nobody keeps alive counts 90 s, not
more. Pixels once served are on a screen for at least `MIN_REVEAL_S`: an event never ends
sooner, so a client that fetches full-size pictures and "stops" each at once still counts the
time they were shown. Events that overlap (a step on a step, two tabs) are counted once: the
day's exposure is the length of the union of the events (`exposure_pieces`). The review page
calls `heartbeat` at least once a minute while it is open (reveal or not).

Reveal steps come in order (`check_steps`): a request's steps are the first steps of the
analyst's policy (colour, then sharp, then full size, then the video), and asking for one
needs the step before it revealed on that item in this review session; otherwise
`reveal_out_of_order` (HTTP 400).

Two limits lock review for a break (`ReviewLocked`, HTTP 423):

* the session limit (default 45 min of wall-clock review work: the session starts with the
  first review action and a gap as long as the break ends it, as a natural break); review
  locks for `break_min` (default 15);
* the daily exposure limit (default 120 min of revealed media); review locks until the
  next midnight in the deployment's time zone (setting `timezone`, `VIGIE_TIMEZONE`, default UTC).

A third limit, `days_per_week` (default 7: none), locks review until next Monday once the
analyst has reviewed on that many other days of the week ("2 hours a day, 3 days a week"); days and
weeks begin at midnight in the deployment's time zone.

A supervisor can end a lock early with a reason (`end_lock`, recorded in the audit trail); after
a daily or weekly lock is ended, the limit counts again from that moment.

A warning is due `warning_min` (default 5) before either limit. All time comes from an
injectable clock (`vigie.review.clock`).

**Deployment floors.** The deployment sets the harshest policy anyone may apply
(`wellbeing_floor` in the settings, `VIGIE_WELLBEING_FLOOR`; by default `DEFAULT_FLOOR`): the
team's policy is always at least as gentle as the floor, and a supervisor asking for a harsher
value is refused (`below_floor`), never silently ignored; an analyst's own choices can only be
gentler still. `floor_policy(settings)` is the floor; `get_team_policy` returns the team's
policy as applied, the floor included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, text

from vigie import audit
from vigie.errors import Conflict, UsageError, VigieError
from vigie.review.clock import Clock, FixedClock, SystemClock, aware, now_utc
from vigie.store.db import Store
from vigie.store.review_models import ExposureEvent, ReviewPolicy, ReviewSession

#: Reveal steps, in the order the app offers them, and the exposure kind each one records.
STEPS = ("colour", "sharp", "full", "video")
EXPOSURE_KINDS = {"colour": "reveal_colour", "sharp": "reveal_sharp", "full": "reveal_full", "video": "video_play"}
#: Largest side of the stored preview; a policy's thumbnail size is at most this.
PREVIEW_SIDE = 512
#: An open reveal with no sign of life (heartbeat, request) for this long ends this long after the last one:
#: three of the page's 30-second heartbeats missed.
REVEAL_TIMEOUT_S = 90
#: Revealed pixels, once served, count at least this long, whatever the client says afterwards.
MIN_REVEAL_S = 2

__all__ = ["Clock", "FixedClock", "SystemClock", "WellbeingPolicy", "effective_policy", "ExposureTracker",
           "ReviewLocked", "team_exposure", "get_team_policy", "set_team_policy", "set_personal_policy",
           "policy_for", "STEPS", "end_lock", "exposure_pieces", "StepsOutOfOrder", "deployment_zone",
           "REVEAL_TIMEOUT_S", "MIN_REVEAL_S", "not_applied"]


class ReviewLocked(VigieError):
    """Review is locked for a break (session limit) or until tomorrow (daily exposure limit)."""

    code = "review_locked"
    http_status = 423

    def __init__(self, message: str, *, locked_until: datetime, reason: str):
        super().__init__(message)
        self.locked_until = locked_until
        self.reason = reason

    def as_dict(self) -> dict:
        return super().as_dict() | {"locked_until": self.locked_until.isoformat(), "reason": self.reason}


@dataclass(frozen=True)
class WellbeingPolicy:
    """How media are shown and how long one may review. Defaults: the team's, unless a supervisor changed them."""

    #: Largest side, in pixels, of a picture as first shown.
    thumb_px: int = 160
    #: Gaussian blur radius (pixels at thumbnail size) until the "sharp" step; 0: no blur.
    blur_px: int = 12
    #: Greyscale until the "colour" step.
    grayscale: bool = True
    #: Steps an analyst may take; an analyst can remove steps for themselves, never add one.
    reveal_steps: tuple[str, ...] = STEPS
    video_muted: bool = True
    #: Videos never start by themselves: playing is a reveal step.
    video_paused: bool = True
    #: A video is shown first as a strip of keyframes.
    keyframes_first: bool = True
    daily_limit_min: int = 120
    session_limit_min: int = 45
    break_min: int = 15
    warning_min: int = 5
    #: Days of the (Monday to Sunday) week on which one may review.
    days_per_week: int = 7

    def __post_init__(self):
        bad = [s for s in self.reveal_steps if s not in STEPS]
        if bad:
            raise UsageError(f"unknown reveal step(s): {', '.join(bad)} (known: {', '.join(STEPS)})",
                             code="bad_value")
        object.__setattr__(self, "reveal_steps", tuple(s for s in STEPS if s in self.reveal_steps))
        for name, lo, hi in (("thumb_px", 32, PREVIEW_SIDE), ("blur_px", 0, 64), ("daily_limit_min", 1, 24 * 60),
                             ("session_limit_min", 1, 24 * 60), ("break_min", 0, 24 * 60),
                             ("warning_min", 0, 24 * 60), ("days_per_week", 1, 7)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise UsageError(f"{name} must be a whole number from {lo} to {hi}", code="bad_value")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["reveal_steps"] = list(self.reveal_steps)
        return d

    @classmethod
    def from_dict(cls, d: dict | None, base: WellbeingPolicy | None = None) -> WellbeingPolicy:
        """`base` with the fields of `d` (unknown keys refused)."""
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UsageError(f"unknown policy field(s): {', '.join(sorted(unknown))}", code="bad_value")
        if "reveal_steps" in d:
            d["reveal_steps"] = tuple(d["reveal_steps"] or ())
        return replace(base or cls(), **d)


#: How each field gets gentler: "min" (smaller is gentler), "max" (larger is gentler), "true" (True is gentler).
GENTLER = {"thumb_px": "min", "blur_px": "max", "grayscale": "true", "video_muted": "true", "video_paused": "true",
           "keyframes_first": "true", "daily_limit_min": "min", "session_limit_min": "min", "break_min": "max",
           "warning_min": "max", "reveal_steps": "subset", "days_per_week": "min"}

#: The harshest policy the fields allow: what a floor starts from (a field the floor leaves out has no floor).
HARSHEST = {"thumb_px": PREVIEW_SIDE, "blur_px": 0, "grayscale": False, "reveal_steps": STEPS, "video_muted": False,
            "video_paused": False, "keyframes_first": False, "daily_limit_min": 24 * 60,
            "session_limit_min": 24 * 60, "break_min": 0, "warning_min": 0, "days_per_week": 7}
#: The floor of a deployment that sets none: no more than 4 hours of revealed media a day and 2 hours in one
#: session, breaks of at least 10 minutes, some blur, and video sound off.
DEFAULT_FLOOR = {"daily_limit_min": 240, "session_limit_min": 120, "break_min": 10, "blur_px": 4,
                 "video_muted": True}


def floor_policy(settings=None) -> WellbeingPolicy:
    """The harshest policy this deployment allows (`wellbeing_floor`, default `DEFAULT_FLOOR`)."""
    given = getattr(settings, "wellbeing_floor", None) if settings is not None else None
    return WellbeingPolicy.from_dict(dict(DEFAULT_FLOOR if given is None else given),
                                     WellbeingPolicy(**HARSHEST))


def below_floor(policy: WellbeingPolicy, floor: WellbeingPolicy) -> list[str]:
    """The fields of `policy` harsher than the floor allows."""
    applied = effective_policy(floor, policy.as_dict())
    return [name for name in GENTLER if getattr(applied, name) != getattr(policy, name) and name != "warning_min"]


def effective_policy(team: WellbeingPolicy, personal: WellbeingPolicy | dict | None) -> WellbeingPolicy:
    """The team policy made gentler by the analyst's own choices; a harsher personal value is ignored."""
    if personal is None:
        return team
    mine = personal.as_dict() if isinstance(personal, WellbeingPolicy) else dict(personal)
    out = {}
    for name, rule in GENTLER.items():
        if name not in mine or mine[name] is None:
            continue
        t, p = getattr(team, name), mine[name]
        if rule == "min":
            out[name] = min(t, int(p))
        elif rule == "max":
            out[name] = max(t, int(p))
        elif rule == "true":
            out[name] = bool(t) or bool(p)
        else:
            out[name] = tuple(s for s in t if s in set(p))
    pol = replace(team, **out)
    # a warning is never later than the start of the shortest limit
    warn = min(pol.warning_min, pol.session_limit_min, pol.daily_limit_min)
    return replace(pol, warning_min=max(warn, 0))


# ---------------------------------------------------------------------------------------------- storage

TEAM = "team"


def _key(user: str) -> str:
    return f"user:{user}"


def get_team_policy(store: Store) -> WellbeingPolicy:
    """The team's policy as applied: what the supervisors set, made at least as gentle as the floor (a floor
    raised after they set it applies at once)."""
    with store.sessions() as s:
        row = s.get(ReviewPolicy, TEAM)
        stored = WellbeingPolicy.from_dict(row.data if row else None)
    return effective_policy(floor_policy(store.settings), stored.as_dict())


class BelowFloor(UsageError):
    code = "below_floor"
    http_status = 422


def set_team_policy(store: Store, policy: WellbeingPolicy | dict, by: str) -> WellbeingPolicy:
    """A supervisor sets the team's defaults (the caller checks the role). A dict changes only its fields.
    A value harsher than the deployment's floor is refused (`below_floor`), so nobody believes it applies."""
    floor = floor_policy(store.settings)
    with store.session() as s:
        row = s.get(ReviewPolicy, TEAM)
        cur = effective_policy(floor, WellbeingPolicy.from_dict(row.data if row else None).as_dict())
        new = policy if isinstance(policy, WellbeingPolicy) else WellbeingPolicy.from_dict(policy, cur)
        bad = below_floor(new, floor)
        if bad:
            raise BelowFloor("the deployment's floor does not allow " + ", ".join(
                f"{n}={_show(getattr(new, n))} (at most as harsh as {_show(getattr(floor, n))})" for n in bad))
        if row is None:
            row = ReviewPolicy(key=TEAM, data={})
            s.add(row)
        row.data, row.updated_by = new.as_dict(), by
        audit.record(store, by, "review.policy_team", "review_policy", TEAM, new.as_dict(), session=s)
        return new


def _show(v) -> str:
    return ",".join(v) if isinstance(v, tuple) else str(v)


def get_personal_policy(store: Store, user: str) -> dict:
    with store.sessions() as s:
        row = s.get(ReviewPolicy, _key(user))
        return dict(row.data) if row else {}


def set_personal_policy(store: Store, user: str, changes: dict) -> WellbeingPolicy:
    """An analyst's own choices (kept as given, so that they still apply when the team default changes);
    returns the effective policy, in which a value harsher than the team's has no effect."""
    WellbeingPolicy.from_dict(changes)  # validates names and ranges
    with store.session() as s:
        row = s.get(ReviewPolicy, _key(user))
        if row is None:
            row = ReviewPolicy(key=_key(user), data={})
            s.add(row)
        row.data, row.updated_by = {**(row.data or {}), **changes}, user
        audit.record(store, user, "review.policy_personal", "review_policy", _key(user), dict(changes), session=s)
        data = dict(row.data)
    return effective_policy(get_team_policy(store), data)


def policy_for(store: Store, user: str) -> WellbeingPolicy:
    return effective_policy(get_team_policy(store), get_personal_policy(store, user) or None)


def not_applied(store: Store, user: str) -> list[dict]:
    """The analyst's own choices that have no effect (harsher than the team's policy or the floor), each with
    what applies instead: what the page tells them rather than "saved"."""
    mine = get_personal_policy(store, user)
    applied = policy_for(store, user).as_dict()
    out = []
    for name, asked in mine.items():
        if name not in applied or name == "warning_min":
            continue
        have = applied[name]
        if (list(asked or ()) if name == "reveal_steps" else asked) != have:
            out.append({"field": name, "asked": asked, "applied": have})
    return out


def saved_message(store: Store, user: str) -> str:
    """What the personal settings page says after a save: "saved" only when every choice took effect; else
    which did not, and what applies instead (the team's policy or the deployment's floor is gentler)."""
    missed = not_applied(store, user)
    if not missed:
        return "Your wellbeing settings were saved and apply now."
    what = "; ".join(f"{m['field'].replace('_', ' ')}: you asked for {_show(_tuple(m['asked']))}, "
                     f"{_show(_tuple(m['applied']))} applies" for m in missed)
    return ("Saved, but not all of it applies: a setting harsher than the team's policy or the deployment's floor "
            f"has no effect. {what}.")


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


# ---------------------------------------------------------------------------------------------- exposure


def _event_end(e: ExposureEvent, now: datetime) -> datetime:
    """When an event stops counting: its end, else REVEAL_TIMEOUT_S after its last sign of life (never before
    MIN_REVEAL_S after its start); never later than now."""
    start = aware(e.started_at)
    timeout = aware(e.last_seen_at) + timedelta(seconds=REVEAL_TIMEOUT_S)
    end = aware(e.ended_at) if e.ended_at is not None else timeout
    return min(now, max(end, start + timedelta(seconds=MIN_REVEAL_S)))


def exposure_pieces(events, now: datetime, since: datetime | None = None, until: datetime | None = None
                    ) -> list[tuple[datetime, datetime, ExposureEvent]]:
    """The union of these events' spans (within `since`..`until`), cut into pieces that do not overlap, each
    with the event it is counted for (the one that started first): overlapping reveals count once."""
    spans = sorted(((aware(e.started_at), _event_end(e, now), e) for e in events), key=lambda x: (x[0], x[2].id))
    out, covered = [], since
    for start, end, e in spans:
        if covered is not None and start < covered:
            start = covered
        if until is not None and end > until:
            end = until
        if end > start:
            out.append((start, end, e))
            covered = end
    return out


def _span_seconds(pieces) -> float:
    return sum((b - a).total_seconds() for a, b, _ in pieces)


def _closed_length(e: ExposureEvent, end: datetime) -> tuple[datetime, float]:
    """The end and seconds of an event closed at `end` (at least MIN_REVEAL_S after its start)."""
    start = aware(e.started_at)
    end = max(end, start + timedelta(seconds=MIN_REVEAL_S))
    return end, (end - start).total_seconds()


class StepsOutOfOrder(UsageError):
    """A reveal step asked for before the steps that come first (`?steps=full` straight away)."""

    code = "reveal_out_of_order"
    http_status = 400


class NotLocked(Conflict):
    code = "not_locked"


class OwnLock(UsageError):
    code = "own_lock"
    http_status = 403


def deployment_zone(settings) -> ZoneInfo:
    """The deployment's time zone (setting `timezone`, an IANA name; UTC when unset): where days begin."""
    try:
        return ZoneInfo(getattr(settings, "timezone", None) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _local(clock: Clock | None, zone: ZoneInfo) -> datetime:
    return now_utc(clock).astimezone(zone)


def _midnight(t: datetime) -> datetime:
    """The midnight that begins the day of `t` in `t`'s zone (a day of 23 or 25 hours handled by the zone)."""
    return datetime(t.year, t.month, t.day, tzinfo=t.tzinfo)


class ExposureTracker:
    """Counts revealed seconds per analyst on the server's clock and applies the session, daily and weekly
    limits; days begin at midnight in the deployment's time zone."""

    def __init__(self, store: Store, policy: WellbeingPolicy | None = None):
        self.store = store
        self._policy = policy
        self.zone = deployment_zone(getattr(store, "settings", None))

    def policy(self, user: str) -> WellbeingPolicy:
        return self._policy or policy_for(self.store, user)

    def local_now(self, clock: Clock | None = None) -> datetime:
        """The time in the deployment's zone."""
        return _local(clock, self.zone)

    # ---- reveals

    def start_reveal(self, user: str, item_id: int | None, step: str, clock: Clock | None = None, *,
                     cluster_id: int | None = None) -> dict:
        """One deliberate reveal step on one item, counted from now (the server serves the pixels now). Any
        reveal still open ends here: on another item, the item was left; on the same item, the previous step's
        event ends where this one starts (and overlaps are counted once)."""
        pol = self.policy(user)
        if step not in STEPS:
            raise UsageError(f"unknown reveal step {step!r} (known: {', '.join(STEPS)})", code="bad_value")
        if step not in pol.reveal_steps:
            raise UsageError(f"the reveal step {step!r} is turned off in your wellbeing settings", code="bad_value")
        self.check(user, clock)
        now = now_utc(clock)
        with self.store.session() as s:
            self._touch(s, user, now, pol)
            self._close_open(s, user, now)
            e = ExposureEvent(user=user, item_id=item_id, cluster_id=cluster_id, kind=EXPOSURE_KINDS[step],
                              started_at=now, last_seen_at=now)
            s.add(e)
            s.flush()
            audit.record(self.store, user, "review.reveal", "review_item", item_id,
                         {"step": step, "cluster": cluster_id, "event": e.id}, session=s)
            return {"event": e.id, "item": item_id, "step": step, "kind": e.kind}

    def check_steps(self, user: str, item_id: int, steps, clock: Clock | None = None) -> tuple[str, ...]:
        """Called on every request for an item's media, before anything is served.

        Steps must come in order: the steps asked for are the first steps of the analyst's policy (colour, then
        sharp, then full size, then the video), and the step before the last one must have been revealed on this
        item in this review session; else `reveal_out_of_order` (400). A request with no step shows the plain
        preview: the item was hidden again, so its open reveal ends now."""
        want = tuple(x for x in STEPS if x in set(steps))
        now = now_utc(clock)
        if not want:
            with self.store.session() as s:
                for e in self._open(s, user):
                    if e.item_id == item_id:
                        self._close(s, e, now)
            return want
        pol = self.policy(user)
        allowed = pol.reveal_steps
        if want != allowed[:len(want)]:
            first = next((x for x in allowed if x not in want), None)
            raise StepsOutOfOrder(f"reveal steps come in order ({', '.join(allowed)}): asked for "
                                  f"{', '.join(want)} without {first}")
        if len(want) == 1:
            return want
        before = want[-2]
        ok_kinds = [EXPOSURE_KINDS[x] for x in allowed[allowed.index(before):]]
        with self.store.sessions() as s:
            cur = self._current_session(s, user, now, pol)
            seen = cur is not None and s.scalar(select(ExposureEvent.id).where(
                ExposureEvent.user == user, ExposureEvent.item_id == item_id, ExposureEvent.kind.in_(ok_kinds),
                ExposureEvent.started_at >= aware(cur.started_at)).limit(1)) is not None
        if not seen:
            raise StepsOutOfOrder(f"reveal steps come in order: reveal {before!r} on this item before "
                                  f"{want[-1]!r}")
        return want

    def heartbeat(self, user: str, clock: Clock | None = None) -> None:
        """The page is still open (it calls this every 30 s): open reveals are still on screen, unless their
        timeout has passed already (then they ended at it; a late heartbeat does not bring them back)."""
        now = now_utc(clock)
        with self.store.session() as s:
            for e in self._open(s, user):
                if aware(e.last_seen_at) + timedelta(seconds=REVEAL_TIMEOUT_S) >= now:
                    e.last_seen_at = now
                else:
                    self._close(s, e, now)
            self._touch(s, user, now, self.policy(user))

    def stop_reveal(self, user: str, clock: Clock | None = None, *, item_id: int | None = None) -> float:
        """The item was left (or hidden again): close its reveal events; returns the seconds they counted."""
        now = now_utc(clock)
        with self.store.session() as s:
            total = 0.0
            for e in self._open(s, user):
                if item_id is None or e.item_id == item_id:
                    total += self._close(s, e, now)
                    audit.record(self.store, user, "review.reveal_end", "review_item", e.item_id,
                                 {"kind": e.kind, "seconds": round(e.seconds, 1), "event": e.id}, session=s)
            return total

    @staticmethod
    def _open(s, user: str) -> list[ExposureEvent]:
        return list(s.scalars(select(ExposureEvent).where(ExposureEvent.user == user,
                                                          ExposureEvent.ended_at.is_(None))))

    @staticmethod
    def _close(s, e: ExposureEvent, now: datetime) -> float:
        """End an open event now, or where its timeout ended it already; never before MIN_REVEAL_S."""
        timeout = aware(e.last_seen_at) + timedelta(seconds=REVEAL_TIMEOUT_S)
        e.ended_at, e.seconds = _closed_length(e, min(now, timeout))
        return e.seconds

    def _close_open(self, s, user: str, now: datetime) -> None:
        for e in self._open(s, user):
            self._close(s, e, now)

    # ---- sessions and limits

    def touch(self, user: str, clock: Clock | None = None) -> None:
        """A review action: starts a session if none is running (a gap as long as the break ends one)."""
        now = now_utc(clock)
        with self.store.session() as s:
            self._touch(s, user, now, self.policy(user))

    @staticmethod
    def _current_session(s, user: str, now: datetime, pol: WellbeingPolicy) -> ReviewSession | None:
        """The review session running now (none after a gap as long as the break)."""
        cur = s.scalars(select(ReviewSession).where(ReviewSession.user == user, ReviewSession.ended_at.is_(None))
                        .order_by(ReviewSession.started_at.desc()).limit(1)).first()
        if cur is not None and now - aware(cur.last_activity_at) >= timedelta(minutes=max(pol.break_min, 1)):
            return None
        return cur

    def _touch(self, s, user: str, now: datetime, pol: WellbeingPolicy) -> ReviewSession | None:
        locked = s.scalar(select(ReviewSession.id).where(ReviewSession.user == user,
                                                         ReviewSession.locked_until > now).limit(1))
        if locked is not None:
            return None  # no session starts during a break: it starts on the first action after it
        cur = s.scalars(select(ReviewSession).where(ReviewSession.user == user, ReviewSession.ended_at.is_(None))
                        .order_by(ReviewSession.started_at.desc()).limit(1)).first()
        if cur is not None and now - aware(cur.last_activity_at) >= timedelta(minutes=max(pol.break_min, 1)):
            cur.ended_at = cur.last_activity_at  # a natural break as long as the required one
            cur = None
        if cur is None:
            cur = ReviewSession(user=user, started_at=now, last_activity_at=now)
            s.add(cur)
        cur.last_activity_at = max(aware(cur.last_activity_at), now)
        s.flush()
        return cur

    def exposed_seconds(self, user: str, since: datetime, now: datetime, s=None) -> float:
        """Seconds of revealed media from `since` to `now`, overlaps counted once."""
        def run(sess):
            evs = sess.scalars(select(ExposureEvent).where(
                ExposureEvent.user == user, ExposureEvent.started_at >= since - timedelta(days=1),
                ExposureEvent.started_at < now))
            return _span_seconds(exposure_pieces(list(evs), now, since, now))

        if s is not None:
            return run(s)
        with self.store.sessions() as sess:
            return run(sess)

    @staticmethod
    def _lifted_since(s, user: str, since: datetime, kinds: tuple[str, ...]) -> datetime | None:
        """When a supervisor last ended a lock of these kinds after `since` (limits count again from there)."""
        t = s.scalar(select(ReviewSession.locked_until).where(
            ReviewSession.user == user, ReviewSession.lock_reason.in_([f"{k}_lifted" for k in kinds]),
            ReviewSession.locked_until >= since).order_by(ReviewSession.locked_until.desc()).limit(1))
        return aware(t)

    def status(self, user: str, clock: Clock | None = None) -> dict:
        """Where the analyst stands: exposure today, session time, time left, warning, lock.

        Applies a lock when a limit is reached (and records it once in the audit trail)."""
        pol = self.policy(user)
        now = now_utc(clock)
        local = self.local_now(clock)
        today = _midnight(local)
        with self.store.session() as s:
            # One computation per person at a time, so two requests at the limit lock once (SQLite: the write
            # transaction already serialises; PostgreSQL: a lock per person for this transaction).
            if s.get_bind().dialect.name == "postgresql":
                s.execute(text("SELECT pg_advisory_xact_lock(hashtextextended('vigie:wellbeing:' || :u, 0))"),
                          {"u": user})
            since = max(today.astimezone(UTC), self._lifted_since(s, user, today.astimezone(UTC),
                                                                  ("daily", "week")) or today.astimezone(UTC))
            exposed = self.exposed_seconds(user, since, now, s)
            exposed_today = exposed if since == today.astimezone(UTC) else \
                self.exposed_seconds(user, today.astimezone(UTC), now, s)
            lock = s.scalars(select(ReviewSession).where(ReviewSession.user == user,
                                                         ReviewSession.locked_until.is_not(None))
                             .order_by(ReviewSession.locked_until.desc()).limit(1)).first()
            locked_until = aware(lock.locked_until) if lock is not None else None
            reason = lock.lock_reason if lock is not None else None
            if locked_until is not None and locked_until <= now:
                locked_until = reason = None
            cur = s.scalars(select(ReviewSession).where(ReviewSession.user == user,
                                                        ReviewSession.ended_at.is_(None))
                            .order_by(ReviewSession.started_at.desc()).limit(1)).first()
            if cur is not None and now - aware(cur.last_activity_at) >= timedelta(minutes=max(pol.break_min, 1)):
                cur.ended_at = cur.last_activity_at
                cur = None
            session_s = (now - aware(cur.started_at)).total_seconds() if cur is not None else 0.0
            session_limit = pol.session_limit_min * 60
            daily_limit = pol.daily_limit_min * 60
            other_days = self._other_days_this_week(s, user, local) if pol.days_per_week < 7 else 0
            if locked_until is None and other_days >= pol.days_per_week:
                monday = _midnight(local - timedelta(days=local.weekday())) + timedelta(days=7)
                locked_until, reason = _midnight(monday).astimezone(UTC), "week"
                self._lock(s, user, cur, now, locked_until, reason, exposed_today, session_s)
                cur, session_s = None, 0.0
            elif locked_until is None and exposed >= daily_limit:
                tomorrow = _midnight(today + timedelta(days=1))
                locked_until, reason = tomorrow.astimezone(UTC), "daily"
                self._lock(s, user, cur, now, locked_until, reason, exposed_today, session_s)
                cur, session_s = None, 0.0
            elif locked_until is None and cur is not None and session_s >= session_limit:
                at_limit = aware(cur.started_at) + timedelta(seconds=session_limit)
                locked_until, reason = at_limit + timedelta(minutes=pol.break_min), "session"
                if locked_until <= now:  # the break has passed already: a new session starts on the next action
                    cur.ended_at, cur.locked_until, cur.lock_reason = at_limit, locked_until, reason
                    locked_until = reason = None
                else:
                    self._lock(s, user, cur, at_limit, locked_until, reason, exposed_today, session_s)
                cur, session_s = None, 0.0
            remaining = max(0.0, min(session_limit - session_s, daily_limit - exposed))
            locked = locked_until is not None
            return {"user": user, "exposed_today_s": round(exposed_today, 1), "session_s": round(session_s, 1),
                    "remaining_s": 0.0 if locked else round(remaining, 1),
                    "warning": (not locked) and remaining <= pol.warning_min * 60,
                    "locked": locked, "locked_until": locked_until, "lock_reason": reason,
                    "daily_limit_s": daily_limit, "session_limit_s": session_limit}

    def _other_days_this_week(self, s, user: str, local: datetime) -> int:
        """Days of this week (Monday to Sunday, in the deployment's zone) before today with revealed media
        (since a supervisor last ended a weekly lock, if they did this week)."""
        today = _midnight(local)
        monday = _midnight(local - timedelta(days=local.weekday())).astimezone(UTC)
        since = max(monday, self._lifted_since(s, user, monday, ("week",)) or monday)
        evs = s.scalars(select(ExposureEvent.started_at).where(
            ExposureEvent.user == user, ExposureEvent.started_at >= since,
            ExposureEvent.started_at < today.astimezone(UTC)))
        return len({aware(t).astimezone(self.zone).date() for t in evs})

    def _lock(self, s, user, cur, at, until, reason, exposed, session_s) -> None:
        for e in self._open(s, user):
            self._close(s, e, at)
        if cur is None:
            cur = ReviewSession(user=user, started_at=at, last_activity_at=at)
            s.add(cur)
        cur.ended_at, cur.locked_until, cur.lock_reason = at, until, reason
        s.flush()
        audit.record(self.store, user, "review.lock", "review_session", cur.id,
                     {"reason": reason, "until": until.isoformat(), "exposed_today_s": round(exposed, 1),
                      "session_s": round(session_s, 1)}, session=s)

    def check(self, user: str, clock: Clock | None = None) -> dict:
        """Raise ReviewLocked when review is locked for this analyst; else return the status."""
        st = self.status(user, clock)
        if st["locked"]:
            what = {"daily": "the daily exposure limit is reached",
                    "week": "the days-per-week limit is reached"}.get(
                st["lock_reason"], "time for a break: the session limit is reached")
            until = st["locked_until"].astimezone(self.zone)
            raise ReviewLocked(f"review is locked: {what}; it opens again at {until:%Y-%m-%d %H:%M} "
                               f"{getattr(self.zone, 'key', 'UTC')}", locked_until=st["locked_until"],
                               reason=st["lock_reason"])
        return st

    def end_lock(self, user: str, by: str, reason: str, clock: Clock | None = None) -> dict:
        """A supervisor ends `user`'s lock now, for a reason recorded in the audit trail (see `end_lock`)."""
        return end_lock(self.store, user, by, reason, clock)


def end_lock(store: Store, user: str, by: str, reason: str, clock: Clock | None = None) -> dict:
    """A supervisor ends an analyst's lock early (the caller checks the role). The reason is required and goes
    into the audit trail with who ended which lock and when it would have ended. After a daily or weekly lock,
    the limit counts again from now (the analyst gets a fresh allowance, which is the point of lifting it).
    Nobody ends their own lock (`own_lock`); no lock: `not_locked` (409)."""
    reason = (reason or "").strip()
    if not reason:
        raise UsageError("give the reason for ending this lock early: it is recorded", code="missing_value")
    if len(reason) > 1000:
        raise UsageError("the reason is longer than 1000 characters", code="too_long")
    if by == user:
        raise OwnLock("nobody ends their own lock: ask a supervisor")
    now = now_utc(clock)
    with store.session() as s:
        rows = list(s.scalars(select(ReviewSession).where(ReviewSession.user == user,
                                                          ReviewSession.locked_until > now)
                              .order_by(ReviewSession.locked_until.desc())))
        if not rows:
            raise NotLocked(f"{user} has no lock to end")
        kind, was = rows[0].lock_reason or "session", aware(rows[0].locked_until)
        for r in rows:
            r.lock_reason = f"{(r.lock_reason or 'session')[:12]}_lifted"
            r.locked_until = now
        s.flush()
        out = {"user": user, "lock_reason": kind, "was_until": was, "ended_at": now, "by": by, "reason": reason}
        audit.record(store, by, "review.unlock", "review_session", rows[0].id,
                     {"user": user, "lock": kind, "was_until": was.isoformat(), "reason": reason}, session=s)
    return out


def current_locks(store: Store, clock: Clock | None = None) -> list[dict]:
    """Who is locked out of review now, why and until when (the supervisors' exposure page)."""
    now = now_utc(clock)
    out: dict[str, dict] = {}
    with store.sessions() as s:
        for r in s.scalars(select(ReviewSession).where(ReviewSession.locked_until > now)
                           .order_by(ReviewSession.locked_until.desc())):
            out.setdefault(r.user, {"user": r.user, "lock_reason": r.lock_reason,
                                    "locked_until": aware(r.locked_until)})
    return sorted(out.values(), key=lambda d: d["user"])


# ---------------------------------------------------------------------------------------------- supervisor page


def team_exposure(store: Store, period: str = "day", clock: Clock | None = None, *, day: date | None = None
                  ) -> dict:
    """The team's exposure for the day or the ISO week (Monday to Sunday) containing `day` (default today),
    per analyst: revealed seconds, per kind and per day, reveals, sessions and locks."""
    if period not in ("day", "week"):
        raise UsageError("period is day or week", code="bad_value")
    now = now_utc(clock)
    tz = deployment_zone(store.settings)
    local = _local(clock, tz)
    d = day or local.date()
    first = d if period == "day" else d - timedelta(days=d.weekday())
    days = 1 if period == "day" else 7
    start = datetime(first.year, first.month, first.day, tzinfo=tz)
    end = _midnight(start + timedelta(days=days))
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    users: dict[str, dict] = {}

    def row(u: str) -> dict:
        return users.setdefault(u, {"user": u, "exposed_s": 0.0, "reveals": 0, "by_kind": {}, "by_day": {},
                                    "sessions": 0, "locks": 0})

    with store.sessions() as s:
        per_user: dict[str, list[ExposureEvent]] = {}
        for e in s.scalars(select(ExposureEvent).where(ExposureEvent.started_at >= lo - timedelta(days=1),
                                                       ExposureEvent.started_at < hi)):
            per_user.setdefault(e.user, []).append(e)
            if aware(e.started_at) >= lo:
                row(e.user)["reveals"] += 1
        for u, evs in per_user.items():
            for a, b, e in exposure_pieces(evs, now, lo, min(hi, now)):
                r = row(u)
                while a < b:  # a piece across midnight counts on both days
                    cut = min(b, _midnight(a.astimezone(tz) + timedelta(days=1)).astimezone(UTC))
                    secs = (cut - a).total_seconds()
                    r["exposed_s"] += secs
                    r["by_kind"][e.kind] = r["by_kind"].get(e.kind, 0.0) + secs
                    k = a.astimezone(tz).date().isoformat()
                    r["by_day"][k] = r["by_day"].get(k, 0.0) + secs
                    a = cut
        for rs in s.scalars(select(ReviewSession).where(ReviewSession.started_at >= lo,
                                                        ReviewSession.started_at < hi)):
            r = row(rs.user)
            r["sessions"] += 1
            r["locks"] += rs.locked_until is not None
    out = sorted(users.values(), key=lambda r: (-r["exposed_s"], r["user"]))
    for r in out:
        r["exposed_s"] = round(r["exposed_s"], 1)
        r["by_kind"] = {k: round(v, 1) for k, v in r["by_kind"].items()}
        r["by_day"] = {k: round(v, 1) for k, v in sorted(r["by_day"].items())}
    return {"period": period, "from": first.isoformat(), "to": (first + timedelta(days=days - 1)).isoformat(),
            "users": out}
