"""What a scan learns about one item: digests, media type, PDQ and its variants, a thumbnail, never a verdict.

`process_item` runs on worker processes (local pool or Dask) and never raises: a failure is
the result's error. It knows nothing of the store or of banks; `vigie.ingest.scan` matches
and records what it returns. Kept apart from the scan so that the Dask runner
(`vigie.ingest.distributed`) and the scan import it without importing each other.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vigie.errors import MediaError
from vigie.hashing import DIGESTS, FileTimeout, ReadError, _head, digests_only, read_file, time_limit
from vigie.ingest import mediastore
from vigie.ingest.members import Item
from vigie.media.decode import decode_image
from vigie.media.sniff import SNIFF_BYTES, sniff
from vigie.settings import Settings

THUMB_SIDE = 160
#: Error codes that say why a location was skipped (a record), not that something failed.
NOT_ERRORS = frozenset({"special_file", "link", "symlink_loop", "duplicate_folder", "fs_metadata"})
#: Item meta keys that become flags of the row.
META_FLAGS = ("unsafe_name", "encrypted", "name_not_utf8", "link_dangling", "link_outside_evidence", "carved",
              "exif_thumbnail", "embedded", "ads")
#: Flag of a row whose PDQ was computed on a JPEG decoded at reduced scale (`fast_decode`, `vigie scan --fast`).
PDQ_REDUCED = "pdq_reduced"


@dataclass
class ItemResult:
    """What a worker found out about one item (picklable; travels back to the main process)."""

    location: str
    size: int | None = None
    media_type: str | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_variants: list[dict] = field(default_factory=list)
    error: tuple[str, str] | None = None
    flags: list[str] = field(default_factory=list)
    detail: dict = field(default_factory=dict)
    thumb: bytes | None = None
    keyframes: list[bytes] = field(default_factory=list)
    video_frames: list[tuple[float, str, int]] = field(default_factory=list)
    reused: bool = False
    #: CPU seconds this item took on the thread that hashed it (benches add them up: load-independent).
    cpu: float = 0.0


class RecentContent:
    """The results of the last `size` distinct contents a process hashed, by SHA-256: a copy that follows
    its original closely (`IMG_1.jpg` and `IMG_1 (1).jpg` in one folder) is hashed once, even before the
    original's row is in the store, where a worker's other look-up (`known_in_store`) finds older ones."""

    def __init__(self, size: int = 2000) -> None:
        from collections import OrderedDict

        self.size, self.items = size, OrderedDict()

    def get(self, sha256: str) -> ItemResult | None:
        return self.items.get(sha256)

    def add(self, r: ItemResult) -> None:
        if r.sha256 and r.media_type:
            self.items[r.sha256] = r
            if len(self.items) > self.size:
                self.items.popitem(last=False)


def failed_result(item: Item, error: tuple[str, str]) -> ItemResult:
    """The result of an item whose worker died or hung on it (`decoder_crash`, `timeout`), with its digests and
    media type read here, where nothing is decoded: a known file that kills or hangs a decoder is still matched
    by its digests (class exact), and an unknown one keeps its error. Reading it again is safe; decoding is not."""
    r = ItemResult(item.location, size=item.size, error=error)
    if item.deleted:
        r.flags.append("deleted")
    if item.data is None and item.path is None:
        return r
    try:
        digests, r.size, r.media_type = digests_only(item.path, item.data)
    except (OSError, ReadError):
        return r  # unreadable now: the error stays the worker's
    r.md5, r.sha1, r.sha256 = digests["md5"], digests["sha1"], digests["sha256"]
    return r


def _thumb(rgb) -> bytes:
    from PIL import Image

    img = Image.fromarray(rgb)
    img.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=70)
    return buf.getvalue()


def _read(item: Item, settings: Settings) -> tuple[bytes | None, dict, int]:
    """The item's bytes (None when over the size limit) and its digests, read once."""
    if item.data is not None:
        data = item.data
        return data, {n: hashlib.new(n, data).hexdigest() for n in DIGESTS}, len(data)
    try:
        return read_file(item.path, settings.max_file_bytes)
    except ReadError as exc:
        raise OSError(str(exc)) from None


def process_item(item: Item, settings: Settings, known: Callable[[str], ItemResult | None] | None = None,
                 known_good: Callable[[dict], str | None] | None = None, *, miniatures: bool = False
                 ) -> ItemResult:
    """Hash one item; never raises (a failure is the result's error).

    `known_good(digests)` names the digest of a known-good bank (NIST NSRL) that the item has, if any:
    such an item is flagged `known_good` and never decoded (`vigie.banks.known_good`).

    `miniatures`: also make the 160-px thumbnail of a picture and the keyframes of a video (`thumb`,
    `keyframes`), which only `vigie scan --thumbnails` keeps. Off by default: a thumbnail for every
    picture cost ~5 % of a scan and travelled back from every worker for nothing (the review queue
    reads its media again from the evidence, by location)."""
    t0 = time.thread_time()
    r = _process_item(item, settings, known, known_good, miniatures)
    r.cpu = time.thread_time() - t0
    return r


def _process_item(item: Item, settings: Settings, known, known_good, miniatures: bool) -> ItemResult:
    r = ItemResult(item.location, size=item.size)
    if item.deleted:
        r.flags.append("deleted")
    if item.container:
        r.flags.append("container")
    for k in META_FLAGS:
        if item.meta.get(k):
            r.flags.append(k)
    if item.error is not None and item.error.code == "link":
        r.flags.append("link")
    if item.error is not None and item.data is None and item.path is None:
        r.error = (item.error.code, item.error.message)
        if item.digests:  # a member over max_file_bytes: its digests were computed while it streamed past
            _streamed(item, r)
            if known_good and known_good(item.digests):  # a large known application file is no error
                r.flags.append("known_good")
                r.error = None
        return r
    try:
        with time_limit(settings.file_timeout):
            _process(item, settings, r, known, known_good, miniatures)
    except FileTimeout:
        r.error = ("timeout", f"gave up after {settings.file_timeout:g} s")
    except OSError as exc:
        r.error = ("unreadable", f"cannot read: {exc.strerror or exc}")
    except MemoryError:
        r.error = ("too_large", "out of memory")
    except Exception as exc:  # noqa: BLE001 - one bad file never stops a scan
        r.error = ("internal_error", f"{type(exc).__name__}: {exc}")
    if item.error is not None and r.error is None:
        r.error = (item.error.code, item.error.message)
    return r


def _process(item: Item, settings: Settings, r: ItemResult, known, known_good=None, miniatures: bool = False
             ) -> None:
    data, digests, size = _read(item, settings)
    r.size = size
    r.md5, r.sha1, r.sha256 = digests["md5"], digests["sha1"], digests["sha256"]
    if size == 0:
        r.error = ("empty", "the file is empty")
        return
    if data is not None:
        r.media_type = sniff(data[:SNIFF_BYTES])
    elif item.path:
        r.media_type = sniff(_head(item.path))
    if item.container:
        return
    hit = known_good(digests) if known_good else None
    if hit:  # an operating-system or application file (NSRL): digests only, never decoded
        r.flags.append("known_good")
        r.detail["known_good"] = hit
        return
    prev = known(r.sha256) if known else None
    if prev is not None:  # identical content seen before in this scan: hashed once
        for k in ("media_type", "pdq", "pdq_quality", "pdq_variants", "error", "detail", "thumb", "keyframes",
                  "video_frames"):
            setattr(r, k, getattr(prev, k))
        if PDQ_REDUCED in prev.flags:  # the PDQ it carries over was made on a reduced decode
            r.flags.append(PDQ_REDUCED)
        r.reused = True
        return
    if data is None:
        r.error = ("too_large", f"{size:,} bytes is over the limit of {settings.max_file_bytes:,} for decoding")
        return
    if r.media_type is None:
        if mediastore.is_mediastore(item.location):  # Android's: which picture each Gallery thumbnail was made of
            r.detail["mediastore"] = mediastore.read(data)
        return  # not media: digests only, class skipped
    if r.media_type.startswith("image/"):
        _image(data, settings, r, miniatures)
    elif r.media_type.startswith("video/"):
        _video(data, settings, r, miniatures)


def _image(data: bytes, settings: Settings, r: ItemResult, miniatures: bool = False) -> None:
    reduce = settings.fast_decode and r.media_type == "image/jpeg"
    try:
        rgb = decode_image(data, max_pixels=settings.max_pixels, alpha=settings.alpha,
                           background=settings.alpha_background, fast=reduce)
    except MediaError as exc:
        r.error = (exc.code, exc.message)
        return
    if reduce and min(rgb.shape[:2]) >= 512 and _reduced(data, rgb):  # a reduced decode keeps >= 512 px a side
        r.flags.append(PDQ_REDUCED)
    from vigie.signals.variants import compute_variants

    h, variants = compute_variants(rgb, settings, data=data)  # hma_compat too
    r.pdq, r.pdq_quality, r.pdq_variants = h.hex, h.quality, variants
    if miniatures:
        r.thumb = _thumb(rgb)
    _provenance(data, r)


def _reduced(data: bytes, rgb) -> bool:
    """Whether a JPEG was decoded at a reduced scale (Pillow's `draft`, DCT scaling: `fast_decode`, which
    `vigie scan --fast` turns on); only pictures of at least 1024 px a side are, and their PDQ is then a few
    bits off the full decode's, not bit-exact with Meta's tools (flag `pdq_reduced`)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
    except Exception:  # noqa: BLE001 - it decoded a moment ago; a header that fails now is no reduction
        return False
    return (h, w) != tuple(rgb.shape[:2])


def _provenance(data: bytes, r: ItemResult) -> None:
    try:
        from vigie.media.provenance import read_provenance
    except ImportError:
        return
    p = read_provenance(data, r.media_type)
    d = p.as_dict()
    if d:
        r.detail["provenance"] = d
    if p.ai_likely:
        r.flags.append("ai_likely")
    if p.gps:
        r.flags.append("gps")
    if p.thumbnail_of:  # a desktop's thumbnail: evidence its original (`uri`) was on the device
        r.flags.append("thumbnail_of")


def _video(data: bytes, settings: Settings, r: ItemResult, miniatures: bool = False) -> None:
    try:
        from vigie.signals import vpdq
    except ImportError:
        r.error = ("unsupported", "video hashing is not available")
        return
    try:
        vh = vpdq.hash_video(data, seconds_per_hash=1.0, max_seconds=settings.video_max_seconds,
                             engine=settings.pdq_engine)
    except MediaError as exc:
        r.error = (exc.code, exc.message)
        return
    r.video_frames = [(f.timestamp, f.pdq_hex, f.quality) for f in vh.features]
    r.detail["video"] = {"duration": vh.duration, "frames_hashed": len(vh.features)}
    if not miniatures:
        return
    try:
        r.keyframes = [_thumb(fr) for fr in vpdq.keyframes(data, count=4)]
    except Exception:  # noqa: BLE001 - keyframes are a convenience for review
        r.keyframes = []


def _streamed(item: Item, r: ItemResult) -> None:
    """A member too large to hold keeps the digests computed while it streamed, so a bank can still match it
    exactly (a plain file of the same size does); its type comes from its first bytes."""
    d = item.digests
    r.md5, r.sha1, r.sha256, r.size = d["md5"], d["sha1"], d["sha256"], d["size"]
    if item.head:
        r.media_type = sniff(item.head[:SNIFF_BYTES])
