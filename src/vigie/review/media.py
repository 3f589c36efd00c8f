"""Media kept for review: encrypted at rest, shown gently, purged after the decision.

Encryption: AES-256-GCM (`cryptography`), a fresh 96-bit nonce per file, the associated
data binding the ciphertext to its content and role (`<sha256>:<kind>`), so a file
swapped for another one's fails to decrypt. The key comes from the setting `media_key`
or the environment variable `VIGIE_MEDIA_KEY` (base64 of 32 bytes); it is never stored
in the database, only its id (a hash of the key) is, next to each file. With no key
configured, media are refused with the error code `no_media_key`: Vigie never invents
a key and leaves it lying next to the data it protects. Make one with
`python -c "import os,base64;print(base64.b64encode(os.urandom(32)).decode())"`.

Files lie under `data_dir/media/<sha[:2]>/`: `<sha>.bin` (the original), `<sha>.preview.bin`
(a downscaled picture, at most 512 px) and `<sha>.strip.bin` (a video's keyframes side by
side). The review app shows the preview, rendered by `render` with the analyst's policy
(small, blurred, greyscale); the original is read only for the "full size" step or to
play a video, and to add the entry variants to a bank when a decision is confirmed.

Retention: `purge_decided` deletes the files `media_retention_days` (default 30) after the
cluster's decision, and at once for items found in a bank after queueing; the rows stay,
with `purged_at`, so only hashes and decisions remain.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from vigie import audit
from vigie.errors import NotFound, UsageError, VigieError
from vigie.review.clock import Clock, now_utc
from vigie.review.wellbeing import PREVIEW_SIDE, WellbeingPolicy
from vigie.store.db import Store
from vigie.store.review_models import MediaBlob, ReviewCluster, ReviewItem

#: The start of a media file written since files carry their nonce (then the nonce, then AES-GCM's output).
FILE_MAGIC = b"VGM1"

KINDS = ("original", "preview", "strip")
ENV_KEY = "VIGIE_MEDIA_KEY"


class MediaKeyError(VigieError):
    """No usable media key, or a key that does not open this file."""

    code = "no_media_key"
    http_status = 500


class MediaPurged(NotFound):
    code = "media_purged"


def media_key(settings) -> tuple[bytes, str]:
    """(key, key id) from the setting `media_key` or the environment; MediaKeyError when none is usable."""
    raw = getattr(settings, "media_key", None) or os.environ.get(ENV_KEY)
    if hasattr(raw, "get_secret_value"):
        raw = raw.get_secret_value()
    if not raw:
        raise MediaKeyError(f"no media key: set {ENV_KEY} (base64 of 32 random bytes) to keep media for review",
                            code="no_media_key")
    try:
        key = base64.b64decode(str(raw).strip(), validate=True)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise MediaKeyError(f"{ENV_KEY} must be base64 of exactly 32 bytes", code="no_media_key")
    return key, key_id(key)


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"vigie-media-key\x00" + key).hexdigest()[:16]


def _rel(sha256: str, kind: str) -> str:
    name = f"{sha256}.bin" if kind == "original" else f"{sha256}.{kind}.bin"
    return f"media/{sha256[:2]}/{name}"


def _aad(sha256: str, kind: str) -> bytes:
    return f"{sha256}:{kind}".encode()


def store_media(store: Store, settings, sha256: str, data: bytes, *, kind: str = "original", session=None
                ) -> MediaBlob:
    """Encrypt `data` to its file and record it (replacing an earlier copy of the same kind)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if kind not in KINDS:
        raise UsageError(f"media kind is one of {', '.join(KINDS)}", code="bad_value")
    key, kid = media_key(settings)
    nonce = os.urandom(12)
    ct = AESGCM(key).encrypt(nonce, data, _aad(sha256, kind))
    rel = _rel(sha256, kind)
    path = Path(settings.data_dir) / rel
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The file carries its own nonce (FILE_MAGIC + nonce + ciphertext) and is written under a name of its own,
    # then renamed into place: two writers storing the same picture at once (two crawlers, two servers) leave
    # one whole file that decrypts, whichever row wins; with the nonce only in the row, the loser's file
    # replaced the winner's and the queued picture no longer decrypted.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")  # 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(FILE_MAGIC + nonce + ct)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

    def put(s):
        row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha256, MediaBlob.kind == kind))
        if row is None:
            row = MediaBlob(sha256=sha256, kind=kind, path=rel)
            s.add(row)
        row.path, row.nonce, row.key_id, row.size, row.purged_at = rel, nonce.hex(), kid, len(data), None
        s.flush()
        return row

    if session is not None:
        return put(session)
    with store.session() as s:
        return put(s)


def _decrypt(settings, row: MediaBlob) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if row.purged_at is not None:
        raise MediaPurged("the media of this item were purged after the decision; hashes and decision remain",
                          code="media_purged")
    key, kid = media_key(settings)
    if kid != row.key_id:
        raise MediaKeyError(f"this file was encrypted with key {row.key_id}, not the configured key {kid}",
                            code="media_key_mismatch")
    path = Path(settings.data_dir) / row.path
    try:
        ct = path.read_bytes()
    except FileNotFoundError:
        raise MediaPurged("the media file is missing", code="media_purged") from None
    aad = _aad(row.sha256, row.kind)
    if ct[:len(FILE_MAGIC)] == FILE_MAGIC:  # the nonce in the file (any writer's); older files: in the row
        head = len(FILE_MAGIC) + 12
        try:
            return AESGCM(key).decrypt(ct[len(FILE_MAGIC):head], ct[head:], aad)
        except InvalidTag:
            pass  # an older file that happens to start like that: the row's nonce below
    try:
        return AESGCM(key).decrypt(bytes.fromhex(row.nonce), ct, aad)
    except InvalidTag:
        raise MediaKeyError("the media file does not decrypt: damaged, swapped or another key",
                            code="media_key_mismatch") from None


def has_media(store: Store, sha256: str, kind: str = "original") -> bool:
    with store.sessions() as s:
        row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha256, MediaBlob.kind == kind))
        return row is not None and row.purged_at is None


def read_media(store: Store, settings, sha256: str, kind: str = "original") -> bytes:
    """Decrypt without an audit record: for Vigie's own use (hashing into a bank), never to show."""
    with store.sessions() as s:
        row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha256, MediaBlob.kind == kind))
        if row is None:
            raise MediaPurged(f"no {kind} media kept for {sha256}", code="media_purged")
        return _decrypt(settings, row)


def load_media(store: Store, settings, sha256: str, *, user: str, kind: str = "preview",
               purpose: str = "review", role: str = "analyst") -> bytes:
    """Decrypt media to show them, with an audit record of who saw what. Passes the choke point
    (vigie.review.showable): known material is never returned, decided items are not shown."""
    from vigie.review import showable

    with store.sessions() as s:
        item_id = s.scalar(select(ReviewItem.id).where(ReviewItem.sha256 == sha256))
    if item_id is None:
        raise NotFound(f"no review item {sha256}", code="item_not_found")
    showable.check(store, settings, item_id, user=user, role=role)
    with store.session() as s:
        item = s.get(ReviewItem, item_id)
        row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha256, MediaBlob.kind == kind))
        if row is None:
            raise MediaPurged(f"no {kind} media kept for this item", code="media_purged")
        data = _decrypt(settings, row)
        audit.record(store, user, "review.media_view", "review_item", item.id,
                     {"sha256": sha256, "kind": kind, "purpose": purpose}, session=s)
        return data


# ---------------------------------------------------------------------------------------------- previews


def make_preview(data: bytes, settings, side: int = PREVIEW_SIDE) -> tuple[bytes, int, int]:
    """A downscaled JPEG of a picture (never larger than `side`), and the picture's width and height."""
    from PIL import Image

    from vigie.media.decode import decode_image

    rgb = decode_image(data, max_pixels=settings.max_pixels, alpha=settings.alpha,
                       background=settings.alpha_background)
    h, w = rgb.shape[:2]
    img = Image.fromarray(rgb)
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue(), w, h


def make_strip(data: bytes, count: int = 4, height: int = PREVIEW_SIDE // 2) -> bytes:
    """A video's keyframes side by side, as one JPEG: how a video is shown first."""
    from PIL import Image

    from vigie.signals.vpdq import keyframes

    frames = [Image.fromarray(f) for f in keyframes(data, count=count, max_side=height * 2)]
    if not frames:
        raise VigieError("no keyframe could be decoded", code="corrupt")
    scaled = [f.resize((max(1, round(f.width * height / f.height)), height)) for f in frames]
    strip = Image.new("RGB", (sum(f.width for f in scaled) + 4 * (len(scaled) - 1), height), (40, 40, 40))
    x = 0
    for f in scaled:
        strip.paste(f.convert("RGB"), (x, 0))
        x += f.width + 4
    buf = io.BytesIO()
    strip.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def render(data: bytes, policy: WellbeingPolicy, steps: set[str] | frozenset[str] | tuple = (), *,
           box: tuple[int, int] | None = None) -> bytes:
    """A picture as the analyst's screen shows it: small, blurred and greyscale, less so for each step taken.

    Rendered on the server, so an unrevealed picture never reaches the browser sharp or in colour.
    Steps: "colour", "sharp", "full" (full size: the caller passes the original).
    """
    from PIL import Image, ImageFilter

    steps = set(steps)
    img = Image.open(io.BytesIO(data))
    img.load()
    img = img.convert("RGB")
    box = box or (policy.thumb_px, policy.thumb_px)
    if "full" not in steps:
        img.thumbnail(box)
    if policy.grayscale and "colour" not in steps:
        img = img.convert("L")
    if policy.blur_px and "sharp" not in steps:
        scale = max(img.size) / max(max(box), 1)
        img = img.filter(ImageFilter.GaussianBlur(policy.blur_px * max(scale, 1.0)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- retention


def purge_media(store: Store, settings, sha256s: list[str], *, by: str, reason: str, session=None) -> int:
    """Delete the files of these items now; the rows stay with `purged_at`."""
    from vigie.review.clock import SYSTEM

    def run(s) -> int:
        n = 0
        now = now_utc(SYSTEM)
        for i in range(0, len(sha256s), 500):
            for row in s.scalars(select(MediaBlob).where(MediaBlob.sha256.in_(sha256s[i:i + 500]),
                                                         MediaBlob.purged_at.is_(None))):
                _unlink(settings, row)
                row.purged_at = now
                n += 1
        if n:
            audit.record(store, by, "review.media_purge", "media", None,
                         {"files": n, "items": len(sha256s), "reason": reason}, session=s)
        return n

    if session is not None:
        return run(session)
    with store.session() as s:
        return run(s)


def _unlink(settings, row: MediaBlob) -> None:
    p = Path(settings.data_dir) / row.path
    try:
        size = p.stat().st_size
        with open(p, "r+b") as f:  # overwrite before unlinking: a cheap step, not a guarantee on SSDs
            f.write(b"\0" * size)
        p.unlink()
    except FileNotFoundError:
        pass


def purge_decided(store: Store, settings, clock: Clock | None = None, *, by: str = "system") -> dict:
    """Purge media of clusters decided more than `media_retention_days` ago (and of known items at once)."""
    days = int(getattr(settings, "media_retention_days", 30))
    now = now_utc(clock)
    cutoff = now - timedelta(days=days)
    with store.session() as s:
        decided = list(s.scalars(select(ReviewItem.sha256)
                                 .join(ReviewCluster, ReviewItem.cluster_id == ReviewCluster.id)
                                 .where(ReviewCluster.state == "decided", ReviewCluster.decided_at <= cutoff,
                                        ReviewCluster.banked_at.is_not(None))))
        known = list(s.scalars(select(ReviewItem.sha256).where(ReviewItem.state == "known")))
        live = set(s.scalars(select(MediaBlob.sha256).where(MediaBlob.purged_at.is_(None))))
        decided = [x for x in decided if x in live]
        known = [x for x in known if x in live]
        n = purge_media(store, settings, decided, by=by, reason=f"decided over {days} days ago", session=s)
        n += purge_media(store, settings, known, by=by, reason="known material", session=s)
    return {"files": n, "decided_items": len(decided), "known_items": len(known), "retention_days": days}


# ---------------------------------------------------------------------------------------------- what the screen gets


def view_item(store: Store, settings, item_id: int, user: str, *, steps=(), clock: Clock | None = None,
              tracker=None, role: str = "analyst") -> tuple[bytes, str]:
    """What the review screen shows of one item: (bytes, media type), rendered by the analyst's policy.

    No step: the preview, small, blurred and greyscale (a video: its keyframe strip, the same way). Each step
    ("colour", "sharp", "full"; "video" plays the video, muted and paused by the app) is a reveal: asking for
    it starts the exposure count on this item (`ExposureTracker.start_reveal`), so revealed pixels never leave
    the server uncounted. Refused while review is locked, for steps the policy turned off, and for known items.
    """
    from vigie.review.wellbeing import STEPS, ExposureTracker

    tracker = tracker or ExposureTracker(store)
    steps = tuple(s for s in STEPS if s in set(steps))
    policy = tracker.policy(user)
    off = [s for s in steps if s not in policy.reveal_steps]
    if off:
        raise UsageError(f"the reveal step(s) {', '.join(off)} are turned off in your wellbeing settings",
                         code="bad_value")
    tracker.check(user, clock)
    from vigie.review import showable

    showable.check(store, settings, item_id, user=user, role=role)  # the one choke point: known, decided
    tracker.check_steps(user, item_id, steps, clock)  # in order; a plain preview hides the item
    with store.sessions() as s:
        item = s.get(ReviewItem, item_id)
        sha, cluster_id = item.sha256, item.cluster_id
        is_video = (item.media_type or "").startswith("video/")
        if is_video:
            kind = "original" if "video" in steps else "strip"
        else:
            kind = "original" if "full" in steps else "preview"
        row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha, MediaBlob.kind == kind))
        if row is None and kind == "original" and not is_video:
            row = s.scalar(select(MediaBlob).where(MediaBlob.sha256 == sha, MediaBlob.kind == "preview"))
        if row is None:
            raise MediaPurged("no media kept for this item: decide on its description and hashes",
                              code="media_purged")
        data = _decrypt(settings, row)
        media_type = item.media_type if (is_video and kind == "original") else "image/jpeg"
    if steps:
        tracker.start_reveal(user, item_id, steps[-1], clock, cluster_id=cluster_id)
    audit.record(store, user, "review.media_view", "review_item", item_id,
                 {"kind": row.kind, "steps": list(steps), "cluster": cluster_id})
    if is_video and kind == "original":
        from vigie.review import video  # the sound is taken out unless the policy allows it
        return video.served(data, media_type, policy)
    box = (policy.thumb_px * 4, policy.thumb_px) if kind == "strip" else None
    return render(data, policy, steps, box=box), "image/jpeg"
