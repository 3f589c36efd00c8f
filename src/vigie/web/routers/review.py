"""Review of unknown material in the web app: the queue, the review page with deliberate reveals, decisions,
uploads, and the wellbeing pages. Every action is a call into `vigie.review`, which writes the audit trail.

Known material never appears: the queue holds only what no bank knows, and the library refuses known items.
Pictures reach the browser as the server rendered them (small, blurred, greyscale until a reveal step);
every reveal is one click on one item and counts as exposure. The wellbeing calls take the app's clock
(`request.app.state.clock`), so tests move time by hand.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from vigie.banks import service as banks
from vigie.errors import Conflict, UsageError
from vigie.review import decisions, grain, media, queue, summary, wellbeing
from vigie.review.clock import aware
from vigie.web import views
from vigie.web.access import Analyst, Passive, Principal, Public, Supervisor
from vigie.web.routers.review_schemas import (  # noqa: F401 - the API bodies, importable from here too
    BulkDecisionIn,
    BulkDecisionOut,
    BulkResultOut,
    CategoryOut,
    ClusterOut,
    ClusterSummaryOut,
    DecisionIn,
    DecisionOut,
    DecisionRecordOut,
    DisputedOut,
    ExposureOut,
    ExposureRowOut,
    ItemOut,
    NextOut,
    PolicyOut,
    PriorityIn,
    QueueOut,
    QueueTotalsOut,
    RevealStopIn,
    RevealStopOut,
    SplitOut,
    TeamExposureOut,
    TeamExposurePageOut,
    UploadOut,
)

router = APIRouter()
NAV = [("Review", "/review", "analyst"), ("Upload", "/review/upload", "analyst"),
       ("Exposure", "/review/exposure", "supervisor")]

MESSAGES = {
    "empty": "Nothing is waiting for you in the queue.",
    "locked": "Review is locked for a break: see below when it opens again.",
    "uploaded": "The file was queued for review.",
    "policy": "Your wellbeing settings were saved.",
    "team_policy": "The team's wellbeing defaults were saved.",
    "priority": "The priority was changed.",
    "resolved": "The cluster was resolved.",
}
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
STATIC = __import__("pathlib").Path(__file__).resolve().parents[1] / "static"


# ---- models ---------------------------------------------------------------------------------------


# ---- helpers --------------------------------------------------------------------------------------


class _AppClock:
    """The app's clock (a callable) as the review library's Clock (`.now()`)."""

    def __init__(self, fn):
        self._fn = fn

    def now(self) -> datetime:
        return self._fn()


def app_clock(request: Request):
    """The app's clock as a review Clock (the dashboard uses it too)."""
    c = request.app.state.clock
    return c if hasattr(c, "now") else _AppClock(c)


_clock = app_clock


def _st(request: Request):
    return request.app.state.store, request.app.state.settings


def _tracker(request: Request) -> wellbeing.ExposureTracker:
    return wellbeing.ExposureTracker(request.app.state.store)


def _exposure(request: Request, me: Principal) -> ExposureOut:
    st = _tracker(request).status(me.actor, _clock(request))
    return ExposureOut(**{k: v for k, v in st.items() if k in ExposureOut.model_fields})


def _summary(d: dict, now: datetime) -> dict:
    created = aware(datetime.fromisoformat(d["created_at"]))
    return {**d, "created_at": created, "age_s": max(0.0, (now - created).total_seconds())}


def queue_data(request: Request, me: Principal) -> QueueOut:
    store, _ = _st(request)
    now = _clock(request).now()
    sup = me.at_least("supervisor")
    rows = queue.list_queue(store, user=None if sup else me.actor)
    disputed = [DisputedOut(**d) for d in decisions.disputed(store)] if sup else None
    totals = summary.queue_totals(store, user=None if sup else me.actor, now=now)
    return QueueOut(clusters=[ClusterSummaryOut(**_summary(r, now)) for r in rows], totals=QueueTotalsOut(**totals),
                    exposure=_exposure(request, me), disputed=disputed)


def labels(settings) -> dict[str, str]:
    """Category name -> its label in the scheme, for every screen (names are for machines)."""
    return {c.name: c.label for c in decisions.categories(settings).values()}


def _item_out(it: dict) -> ItemOut:
    """One item for the page: each location once, the notes that came with it, the preview's address."""
    is_video = (it["media_type"] or "").startswith("video/")
    has = bool({"preview", "strip", "original"} & set(it["media"]))
    locs = list(dict.fromkeys(it["locations"]))
    count = len(locs) if len(it["locations"]) == it["location_count"] else it["location_count"]
    notes = list(dict.fromkeys(str(r["note"]) for r in it.get("refs") or [] if r.get("note")))
    shown = has and it.get("state") == "queued"  # a decided item is shown to nobody (vigie.review.showable)
    return ItemOut(**{**it, "locations": locs, "location_count": count}, notes=notes, is_video=is_video,
                   media_url=f"/review/items/{it['id']}/media" if shown else None)


def _bank_names(store) -> list[str]:
    return [b.name for b in banks.list_banks(store) if b.enabled]


def cluster_data(request: Request, me: Principal, cluster_id: int) -> ClusterOut:
    store, settings = _st(request)
    sup = me.at_least("supervisor")
    v = queue.cluster_view(store, cluster_id, user=me.actor, supervisor=sup)
    policy = wellbeing.policy_for(store, me.actor)
    items = [_item_out(it) for it in v["items"]]
    pos, size = summary.position(store, cluster_id, user=None if sup else me.actor)
    default_bank = getattr(settings, "review_bank", None) or decisions.DEFAULT_BANK
    names = _bank_names(store)
    if default_bank not in names:
        names.insert(0, default_bank)
    return ClusterOut(**_summary({k: v[k] for k in v if k not in ("items", "decisions")},
                                 _clock(request).now()),
                      items=items, decisions=v.get("decisions") if sup else None,
                      categories=[CategoryOut(name=c.name, label=c.label, classifies=c.classifies)
                                  for c in decisions.categories(settings).values()],
                      banks=names, default_bank=default_bank, reveal_steps=list(policy.reveal_steps),
                      needed=decisions.consensus(settings), position=pos, queue_size=size)


def _decide(request: Request, me: Principal, cluster_id: int, body: DecisionIn) -> DecisionOut:
    store, settings = _st(request)
    bank = (body.bank or "").strip() or None
    if bank is not None and bank == (getattr(settings, "review_bank", None) or decisions.DEFAULT_BANK):
        bank = None  # the review bank: created on the first confirmed decision when missing
    note = (body.note or "").strip() or None
    r = decisions.decide(store, settings, cluster_id, me.actor, body.category, note, bank=bank,
                         clock=_clock(request), item_categories=body.item_categories,
                         item_annotations=body.item_annotations)
    cats = decisions.categories(settings)
    waiting = 0
    if r["state"] == "decided":
        msg = f"Confirmed: hashes added to bank {r['bank']}."
    elif r["state"] == "disputed":
        msg = "Recorded. The decisions differ (or a second opinion was asked for): a supervisor will decide."
    else:
        mine = cats[body.category]
        have = r["votes"].get(body.category, 0) if mine.classifies else r["second_opinions"]
        waiting = max(0, r["needed"] - have)
        msg = (f"Your vote was recorded; waiting for {waiting} more "
               f"analyst{'s' if waiting != 1 else ''}.")
    return DecisionOut(cluster=cluster_id, state=r["state"], category=r["category"],
                       bank=r["bank"] if r["state"] == "decided" else None, waiting_for=waiting, message=msg,
                       banked=r.get("banked"))


def _resolve(request: Request, me: Principal, cluster_id: int, body: DecisionIn) -> DecisionOut:
    store, settings = _st(request)
    bank = (body.bank or "").strip() or None
    if bank is not None and bank == (getattr(settings, "review_bank", None) or decisions.DEFAULT_BANK):
        bank = None
    reason = (body.note or "").strip()
    if not reason:
        raise UsageError("a supervisor's resolution needs a reason (note): it goes into the decision record",
                         code="missing_value")
    r = decisions.resolve(store, settings, cluster_id, me.actor, body.category, reason, bank=bank,
                          clock=_clock(request), item_categories=body.item_categories,
                          item_annotations=body.item_annotations)
    label = labels(settings).get(r["category"], r["category"])
    return DecisionOut(cluster=cluster_id, state=r["state"], category=r["category"], bank=r["bank"],
                       message=f"Resolved as {label}: hashes added to bank {r['bank']}.",
                       banked=r.get("banked"))


def _steps(raw: str) -> tuple[str, ...]:
    steps = tuple(s.strip() for s in raw.split(",") if s.strip())
    bad = [s for s in steps if s not in wellbeing.STEPS]
    if bad:
        raise UsageError(f"unknown reveal step(s): {', '.join(bad)} (known: {', '.join(wellbeing.STEPS)})",
                         code="bad_value")
    return steps


class _Gone(media.MediaPurged):
    http_status = 410


def _team_exposure(request: Request) -> TeamExposurePageOut:
    store, _ = _st(request)
    clock = _clock(request)
    return TeamExposurePageOut(day=TeamExposureOut(**wellbeing.team_exposure(store, "day", clock)),
                               week=TeamExposureOut(**wellbeing.team_exposure(store, "week", clock)))


def _policy(request: Request, me: Principal) -> PolicyOut:
    store, _ = _st(request)
    return PolicyOut(team=wellbeing.get_team_policy(store).as_dict(),
                     personal=wellbeing.get_personal_policy(store, me.actor),
                     effective=wellbeing.policy_for(store, me.actor).as_dict(), steps=list(wellbeing.STEPS))


BOOL_FIELDS = ("grayscale", "video_muted", "video_paused", "keyframes_first")
INT_FIELDS = ("thumb_px", "blur_px", "daily_limit_min", "session_limit_min", "break_min", "warning_min")


def _policy_from_form(form) -> dict:
    if form.get("form") != "policy":
        raise UsageError("send the whole wellbeing form (field form=policy)", code="missing_value")
    out: dict[str, Any] = {}
    for name in INT_FIELDS:
        v = str(form.get(name, "")).strip()
        if v:
            if not v.lstrip("-").isdigit():
                raise UsageError(f"{name} must be a whole number", code="bad_value")
            out[name] = int(v)
    for name in BOOL_FIELDS:
        out[name] = form.get(name) == "on"
    out["reveal_steps"] = [s for s in wellbeing.STEPS if form.get(f"step_{s}") == "on"]
    return out


def _personal_changes(store, user: str, wanted: dict) -> dict:
    """Only what differs from the team's defaults, or was set before (so it can be set back)."""
    team = wellbeing.get_team_policy(store).as_dict()
    before = wellbeing.get_personal_policy(store, user)
    return {k: v for k, v in wanted.items() if k in before or v != team.get(k)}


def local_zone(settings) -> tuple[ZoneInfo, str]:
    """The deployment's time zone (setting `timezone`, an IANA name; UTC by default) and its name."""
    name = getattr(settings, "timezone", None) or "UTC"
    return ZoneInfo(name), name


def _render(request: Request, name: str, me: Principal, *, meter: bool = True, **ctx):
    """A review page: times in the deployment's time zone and, unless the page shows its own, the exposure panel
    (today's exposure and time left) at the top, which the script keeps up to date."""
    zone, zone_name = local_zone(request.app.state.settings)
    if meter:
        ctx["meter"] = _exposure(request, me)
    return views.render(request, name, me, tz=zone, tz_name=zone_name, **ctx)


def _redirect(path: str, msg: str | None = None) -> RedirectResponse:
    return RedirectResponse(f"{path}?msg={msg}" if msg else path, 303)


# ---- pages ----------------------------------------------------------------------------------------


@router.get("/review", include_in_schema=False)
def queue_page(request: Request, me: Analyst, msg: str | None = None):
    return _render(request, "review_queue.html", me, meter=False, data=queue_data(request, me),
                        message=MESSAGES.get(msg or ""), labels=labels(request.app.state.settings),
                        categories=list(decisions.categories(request.app.state.settings).values()))


@router.get("/review/next", include_in_schema=False)
def next_page(request: Request, me: Analyst, skip: str = Query("", max_length=1000)):
    """The next cluster to work on; `skip` (comma-separated ids, from the page's skip key) passes some over."""
    store, _ = _st(request)
    passed = tuple(int(x) for x in skip.split(",")[:50] if x.strip().isdigit() and len(x.strip()) < 19)
    try:
        found = queue.next_cluster(store, me.actor, _clock(request), tracker=_tracker(request), skip=passed)
    except wellbeing.ReviewLocked:
        return _redirect("/review", "locked")
    if found is None:
        return _redirect("/review", "empty")
    return RedirectResponse(f"/review/clusters/{found['id']}", 303)


def _per_item_form(values: list[str]) -> dict[int, list[str]]:
    """`<item id>:<name>` pairs from the page's per-item selects and checkboxes, by item."""
    out: dict[int, list[str]] = {}
    for v in values:
        item, _, name = v.partition(":")
        if item.isdigit() and name:
            out.setdefault(int(item), []).append(name)
    return out


def _bulk(request: Request, me: Principal, body: BulkDecisionIn) -> BulkDecisionOut:
    store, settings = _st(request)
    bank = (body.bank or "").strip() or None
    if bank is not None and bank == (getattr(settings, "review_bank", None) or decisions.DEFAULT_BANK):
        bank = None
    r = grain.decide_many(store, settings, body.clusters, me.actor, body.category, (body.note or "").strip() or None,
                          bank=bank, clock=_clock(request))
    return BulkDecisionOut(results=[BulkResultOut(**{k: v for k, v in x.items() if k in BulkResultOut.model_fields})
                                    for x in r["results"]], decided=r["decided"])


def _cluster_page(request: Request, me: Analyst, cluster_id: int, *, status_code: int = 200,
                  form_error: str | None = None, form: dict | None = None, split_into: int | None = None):
    store, settings = _st(request)
    data = cluster_data(request, me, cluster_id)
    applied = wellbeing.policy_for(store, me.actor)  # what this page really does, stated on it
    return _render(request, "review_cluster.html", me, meter=False, status_code=status_code, data=data,
                        exposure=_exposure(request, me), labels=labels(settings), form_error=form_error,
                        form=form or {}, applied=applied, annotations=decisions.ANNOTATIONS,
                        split_into=split_into)


@router.get("/review/clusters/{cluster_id}", include_in_schema=False)
def cluster_page(request: Request, me: Analyst, cluster_id: int, split: int | None = None):
    return _cluster_page(request, me, cluster_id, split_into=split)


@router.post("/review/clusters/{cluster_id}/decide", include_in_schema=False)
def decide_page(request: Request, me: Analyst, cluster_id: int, category: Annotated[str, Form(max_length=100)] = "",
                note: Annotated[str, Form(max_length=4000)] = "", bank: Annotated[str, Form(max_length=200)] = "",
                item_category: Annotated[list[str], Form(max_length=200)] = [],  # noqa: B006 - FastAPI copies it
                item_annotation: Annotated[list[str], Form(max_length=200)] = []):  # noqa: B006
    """A decision from the page, with the labels and annotations chosen per item in the item pane (`<item id>:<name>`
    values); a missing or refused one comes back on the form, the note kept."""
    _, settings = _st(request)
    kept = {"category": category, "note": note, "bank": bank}
    if not category:
        return _cluster_page(request, me, cluster_id, status_code=422, form=kept,
                             form_error="Choose a category first. Your note was kept.")
    labels_ = {i: names[-1] for i, names in _per_item_form(item_category).items()}
    try:
        out = _decide(request, me, cluster_id, DecisionIn(
            category=category, note=note, bank=bank, item_categories=labels_ or None,
            item_annotations=_per_item_form(item_annotation) or None))
    except UsageError as exc:
        return _cluster_page(request, me, cluster_id, status_code=exc.http_status, form=kept,
                             form_error=f"{exc.message} Your note was kept.")
    return _render(request, "review_decided.html", me, data=out, labels=labels(settings))


@router.post("/review/clusters/{cluster_id}/resolve", include_in_schema=False)
def resolve_page(request: Request, me: Supervisor, cluster_id: int,
                 category: Annotated[str, Form(max_length=100)] = "", note: Annotated[str, Form(max_length=4000)] = "",
                 bank: Annotated[str, Form(max_length=200)] = "", confirm: Annotated[str, Form(max_length=10)] = ""):
    """Two steps, so a resolution is never a slip: the choice and a reason, then a page with every vote and
    the choice in words, where the supervisor confirms. Nothing is preselected; errors come back on the form."""
    store, settings = _st(request)
    cats = {c.name: c for c in decisions.categories(settings).values() if c.classifies}
    errors = []
    if category not in cats:
        errors.append("Choose a category." if not category else f"Unknown category {category!r}.")
    if not note.strip():
        errors.append("Give the reason for this resolution: it is recorded with it.")
    if errors or confirm != "yes":
        return _render(request, "review_resolve.html", me, status_code=422 if errors else 200,
                            cluster=cluster_id, votes=decisions.decisions_of(store, cluster_id), errors=errors,
                            form={"category": category, "note": note, "bank": bank}, labels=labels(settings),
                            categories=list(cats.values()), banks=_bank_names(store),
                            default_bank=getattr(settings, "review_bank", None) or decisions.DEFAULT_BANK)
    out = _resolve(request, me, cluster_id, DecisionIn(category=category, note=note, bank=bank))
    return _render(request, "review_decided.html", me, data=out, labels=labels(settings))


@router.post("/review/items/{item_id}/split", include_in_schema=False)
def split_page(request: Request, me: Analyst, item_id: int):
    """Split from the item pane: back on the cluster the item left, which says where it went."""
    store, settings = _st(request)
    r = grain.split_item(store, settings, item_id, me.actor)
    return RedirectResponse(f"/review/clusters/{r['from']}?split={r['cluster']}", 303)


@router.post("/review/bulk-decide", include_in_schema=False)
def bulk_page(request: Request, me: Analyst, cluster: Annotated[list[int], Form()] = [],  # noqa: B006
              category: Annotated[str, Form(max_length=100)] = "", note: Annotated[str, Form(max_length=4000)] = ""):
    """The queue page's bulk decision: the queue again, saying what happened to each selected cluster."""
    _, settings = _st(request)
    names = labels(settings)
    if not cluster or not category:
        message = "Select at least one cluster and a category for a bulk decision: nothing was recorded."
    else:
        try:
            r = _bulk(request, me, BulkDecisionIn(clusters=cluster, category=category, note=note))
        except UsageError as exc:
            message = f"Nothing was recorded: {exc.message}"
        else:
            done = [x for x in r.results if x.ok]
            refused = [f"#{x.cluster} ({x.message})" for x in r.results if not x.ok]
            plural = "s" if len(done) != 1 else ""
            message = (f"“{names.get(category, category)}” recorded on {len(done)} cluster{plural}"
                       f" ({r.decided} now decided)." + (f" Not recorded: {'; '.join(refused)}." if refused else ""))
    return _render(request, "review_queue.html", me, meter=False, data=queue_data(request, me), message=message,
                   labels=names, categories=list(decisions.categories(settings).values()))


@router.get("/favicon.ico", include_in_schema=False)
def favicon(me: Public):
    """Browsers ask for it on every page: an answer, not a 404 in every log."""
    return FileResponse(STATIC / "favicon.ico", media_type="image/x-icon",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.post("/review/clusters/{cluster_id}/priority", include_in_schema=False)
def priority_page(request: Request, me: Supervisor, cluster_id: int,
                  priority: Annotated[str, Form(max_length=12)] = ""):
    p = priority.strip()
    if p and not p.lstrip("-").isdigit():
        raise UsageError("priority is a whole number (positive: sooner, negative: later) or empty",
                         code="bad_value")
    queue.reprioritise(request.app.state.store, cluster_id, int(p) if p else None, me.actor)
    return _redirect("/review", "priority")


@router.get("/review/items/{item_id}/media", include_in_schema=False)
def item_media(request: Request, me: Analyst, item_id: int, steps: str = ""):
    """The item as the analyst's policy shows it; each step is a reveal counted as exposure (audited)."""
    store, settings = _st(request)
    try:
        data, media_type = media.view_item(store, settings, item_id, me.actor, steps=_steps(steps),
                                           clock=_clock(request), tracker=_tracker(request),
                                           role=me.role or "analyst")
    except media.MediaPurged as exc:
        if exc.code == "media_purged":
            raise _Gone(exc.message, code="media_purged") from None
        raise
    return Response(data, media_type=media_type, headers={"Cache-Control": "no-store"})


@router.get("/review/upload", include_in_schema=False)
def upload_page(request: Request, me: Analyst):
    return _render(request, "review_upload.html", me, result=None, error=None)


async def _read_upload(file: UploadFile) -> bytes:
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise UsageError(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MiB", code="too_large")
    return data


@router.post("/review/upload", include_in_schema=False)
async def upload_submit(request: Request, me: Analyst, file: Annotated[UploadFile | None, File()] = None,
                        note: Annotated[str, Form(max_length=4000)] = ""):
    from fastapi.concurrency import run_in_threadpool

    store, settings = _st(request)
    if file is None or not file.filename:
        return _render(request, "review_upload.html", me, status_code=422, result=None, note=note,
                            error={"code": "missing_value", "message": "Choose a picture or video to upload."})
    data = await _read_upload(file)
    try:
        r = await run_in_threadpool(queue.enqueue_upload, store, settings, data, me.actor, note.strip() or None)
    except Conflict as exc:
        if exc.code != "known_material":
            raise
        return _render(request, "review_upload.html", me, status_code=409, result=None, note=note,
                            error={"code": exc.code, "message": exc.message})
    return _render(request, "review_upload.html", me, error=None, result=_upload_out(r))


def _upload_out(r: dict) -> UploadOut:
    return UploadOut(sha256=r["sha256"], item=r["item"], cluster=r["cluster"], items_added=r["items_added"],
                     items_existing=r["items_existing"])


@router.get("/review/exposure", include_in_schema=False)
def exposure_page(request: Request, me: Supervisor):
    return _render(request, "review_exposure.html", me, data=_team_exposure(request),
                   locks=wellbeing.current_locks(request.app.state.store, _clock(request)))


@router.get("/review/policy", include_in_schema=False)
def policy_page(request: Request, me: Analyst, msg: str | None = None):
    return _render(request, "review_policy.html", me, data=_policy(request, me),
                        message=wellbeing.saved_message(request.app.state.store, me.actor) if msg == "policy"
                        else MESSAGES.get(msg or ""))


@router.post("/review/policy", include_in_schema=False)
async def policy_submit(request: Request, me: Analyst):
    store, _ = _st(request)
    wanted = _policy_from_form(await request.form())
    wellbeing.set_personal_policy(store, me.actor, _personal_changes(store, me.actor, wanted))
    return _redirect("/review/policy", "policy")


@router.post("/review/policy/team", include_in_schema=False)
async def team_policy_submit(request: Request, me: Supervisor):
    wellbeing.set_team_policy(request.app.state.store, _policy_from_form(await request.form()), me.actor)
    return _redirect("/review/policy", "team_policy")


@router.get("/review/disputed", include_in_schema=False)
def disputed_page(request: Request, me: Supervisor):
    store, settings = _st(request)
    return _render(request, "review_disputed.html", me, labels=labels(settings),
                        data=[DisputedOut(**d) for d in decisions.disputed(store)],
                        categories=[c for c in decisions.categories(settings).values() if c.classifies],
                        banks=_bank_names(store),
                        default_bank=getattr(settings, "review_bank", None) or decisions.DEFAULT_BANK)


# ---- JSON twins -----------------------------------------------------------------------------------


@router.get("/api/v1/review/queue", response_model=QueueOut, tags=["review"])
def api_queue(request: Request, me: Analyst) -> QueueOut:
    """Waiting clusters in priority order (analysts: those they have not decided on), and one's exposure."""
    return queue_data(request, me)


@router.get("/api/v1/review/next", response_model=NextOut, tags=["review"])
def api_next(request: Request, me: Analyst) -> NextOut:
    """The next cluster for this analyst (text and hashes), or none. 423 `review_locked` during a break."""
    store, _ = _st(request)
    found = queue.next_cluster(store, me.actor, _clock(request), tracker=_tracker(request))
    if found is None:
        return NextOut(message=MESSAGES["empty"])
    return NextOut(cluster=cluster_data(request, me, found["id"]))


@router.get("/api/v1/review/clusters/{cluster_id}", response_model=ClusterOut, tags=["review"])
def api_cluster(request: Request, me: Analyst, cluster_id: int) -> ClusterOut:
    """A cluster as text and hashes; `media_url` gives the blurred preview. Votes: supervisors only."""
    return cluster_data(request, me, cluster_id)


@router.post("/api/v1/review/clusters/{cluster_id}/decide", response_model=DecisionOut, tags=["review"])
def api_decide(request: Request, me: Analyst, cluster_id: int, body: DecisionIn) -> DecisionOut:
    return _decide(request, me, cluster_id, body)


@router.post("/api/v1/review/clusters/{cluster_id}/resolve", response_model=DecisionOut, tags=["review"])
def api_resolve(request: Request, me: Supervisor, cluster_id: int, body: DecisionIn) -> DecisionOut:
    """A supervisor settles a disputed cluster (or decides any waiting one) alone."""
    return _resolve(request, me, cluster_id, body)


@router.post("/api/v1/review/items/{item_id}/split", response_model=SplitOut, tags=["review"])
def api_split(request: Request, me: Analyst, item_id: int) -> SplitOut:
    """Move a waiting item into a new open cluster of its own. 409 `cluster_decided` on a decided cluster;
    the votes already cast stay with the old cluster."""
    store, settings = _st(request)
    return SplitOut(**grain.split_item(store, settings, item_id, me.actor))


@router.post("/api/v1/review/bulk-decide", response_model=BulkDecisionOut, tags=["review"])
def api_bulk_decide(request: Request, me: Analyst, body: BulkDecisionIn) -> BulkDecisionOut:
    """One decision on each selected cluster (one source only: 400 `mixed_sources`), each in its own transaction;
    the answer says per cluster what happened."""
    return _bulk(request, me, body)


@router.post("/api/v1/review/clusters/{cluster_id}/priority", response_model=ClusterSummaryOut, tags=["review"])
def api_priority(request: Request, me: Supervisor, cluster_id: int, body: PriorityIn) -> ClusterSummaryOut:
    r = queue.reprioritise(request.app.state.store, cluster_id, body.priority, me.actor)
    return ClusterSummaryOut(**_summary(r, _clock(request).now()))


@router.get("/api/v1/review/disputed", response_model=list[DisputedOut], tags=["review"])
def api_disputed(request: Request, me: Supervisor) -> list[DisputedOut]:
    return [DisputedOut(**d) for d in decisions.disputed(request.app.state.store)]


@router.post("/api/v1/review/upload", response_model=UploadOut, status_code=201, tags=["review"])
async def api_upload(request: Request, me: Analyst, file: Annotated[UploadFile, File()],
                     note: Annotated[str, Form(max_length=4000)] = "") -> UploadOut:
    """Queue a file (multipart `file`). 409 `known_material` when a bank knows it: nothing is kept."""
    from fastapi.concurrency import run_in_threadpool

    store, settings = _st(request)
    data = await _read_upload(file)
    r = await run_in_threadpool(queue.enqueue_upload, store, settings, data, me.actor, note.strip() or None)
    return _upload_out(r)


@router.get("/api/v1/review/exposure", response_model=TeamExposurePageOut, tags=["review"])
def api_exposure(request: Request, me: Supervisor) -> TeamExposurePageOut:
    """The team's revealed time per analyst, today and this week."""
    return _team_exposure(request)


@router.get("/api/v1/review/me", response_model=ExposureOut, tags=["review"])
def api_me(request: Request, me: Passive) -> ExposureOut:
    return _exposure(request, me)


@router.get("/api/v1/review/policy", response_model=PolicyOut, tags=["review"])
def api_policy(request: Request, me: Analyst) -> PolicyOut:
    return _policy(request, me)


@router.post("/api/v1/review/policy", response_model=PolicyOut, tags=["review"])
def api_policy_set(request: Request, me: Analyst, body: dict[str, Any]) -> PolicyOut:
    """One's own settings (only gentler than the team's take effect)."""
    wellbeing.set_personal_policy(request.app.state.store, me.actor, body)
    return _policy(request, me)


@router.post("/api/v1/review/policy/team", response_model=PolicyOut, tags=["review"])
def api_team_policy_set(request: Request, me: Supervisor, body: dict[str, Any]) -> PolicyOut:
    wellbeing.set_team_policy(request.app.state.store, body, me.actor)
    return _policy(request, me)


@router.post("/api/v1/review/heartbeat", response_model=ExposureOut, tags=["review"])
def api_heartbeat(request: Request, me: Passive) -> ExposureOut:
    """The review page is open (revealed media still on screen): every 30 s."""
    _tracker(request).heartbeat(me.actor, _clock(request))
    return _exposure(request, me)


@router.post("/api/v1/review/reveal/stop", response_model=RevealStopOut, tags=["review"])
def api_reveal_stop(request: Request, me: Analyst, body: RevealStopIn | None = None) -> RevealStopOut:
    """The item was left: its reveal ends (all of one's reveals without `item_id`)."""
    secs = _tracker(request).stop_reveal(me.actor, _clock(request), item_id=body.item_id if body else None)
    return RevealStopOut(seconds=round(secs, 1), exposure=_exposure(request, me))


class EndLockIn(BaseModel):
    reason: str = Field(min_length=1, max_length=1000, description="Why the lock ends early: recorded.")


class EndLockOut(BaseModel):
    user: str
    lock_reason: str
    was_until: datetime
    ended_at: datetime
    by: str
    reason: str


@router.post("/api/v1/review/locks/{username}/end", response_model=EndLockOut, tags=["review"])
def api_end_lock(request: Request, me: Supervisor, username: Annotated[str, PathParam(max_length=200)],
                 body: EndLockIn) -> EndLockOut:
    """A supervisor ends an analyst's lock (break, daily or weekly limit) early, with a recorded reason."""
    return EndLockOut(**wellbeing.end_lock(request.app.state.store, username, me.actor, body.reason,
                                           _clock(request)))


@router.post("/review/exposure/end-lock", include_in_schema=False)
def end_lock_page(request: Request, me: Supervisor, user: Annotated[str, Form(max_length=200)] = "",
                  reason: Annotated[str, Form(max_length=1000)] = ""):
    """The exposure page's form: end one analyst's lock with a reason; the page says what happened."""
    store = request.app.state.store
    try:
        r = wellbeing.end_lock(store, user, me.actor, reason, _clock(request))
        message, error, status = f"The lock of {r['user']} was ended; your reason is recorded.", None, 200
    except (UsageError, Conflict) as exc:
        message, error, status = None, exc.message, exc.http_status
    return _render(request, "review_exposure.html", me, status_code=status, data=_team_exposure(request),
                   locks=wellbeing.current_locks(store, _clock(request)), lock_message=message, lock_error=error)
