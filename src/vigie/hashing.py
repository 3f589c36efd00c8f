"""Hash one file: MD5, SHA-1 and SHA-256 of its bytes, PDQ of its pixels.

The bytes are read once: digests are computed while reading, and a picture's bytes are
kept in memory for decoding (up to `max_file_bytes`), so a file on a slow evidence
drive is never read twice. A failure becomes an error record with a stable code;
digests computed before the failure are kept, since an exact match on a damaged
file is still a match.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from vigie.errors import ErrorRecord, MediaError
from vigie.media.decode import decode_image
from vigie.media.sniff import SNIFF_BYTES, sniff
from vigie.settings import Settings
from vigie.signals import pdq as pdq_signal
from vigie.signals._digest import CHUNK

DIGESTS = ("md5", "sha1", "sha256")


@dataclass
class HashRecord:
    path: str
    media_type: str | None = None
    size: int | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    pdq_variants: list[dict] | None = None
    error: ErrorRecord | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        d: dict = {"path": self.path}
        if self.error is not None:
            d["error"] = self.error.as_dict()
            d.update({k: v for k, v in self._fields().items() if v is not None})
            return d
        d.update(self._fields())
        if self.pdq_variants is not None:
            d["pdq_variants"] = self.pdq_variants
        d.update(self.extra)
        return d

    def _fields(self) -> dict:
        return {"media_type": self.media_type, "size": self.size, "md5": self.md5, "sha1": self.sha1,
                "sha256": self.sha256, "pdq": self.pdq, "pdq_quality": self.pdq_quality}


class FileTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float):
    """Interrupt work on one file after `seconds` (main thread only; elsewhere no limit)."""
    import threading

    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _alarm(signum, frame):
        raise FileTimeout()

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def hash_bytes(data: bytes, settings: Settings, *, path: str = "<bytes>", variants: bool = False) -> HashRecord:
    """Hash bytes already in memory (uploads, crawled media, archive members)."""
    rec = HashRecord(path=path, size=len(data))
    for name in DIGESTS:
        setattr(rec, name, hashlib.new(name, data).hexdigest())
    rec.media_type = sniff(data[:SNIFF_BYTES])
    _hash_pixels(rec, data, settings, variants)
    return rec


def _hash_pixels(rec: HashRecord, data: bytes | None, settings: Settings, variants: bool) -> None:
    if rec.size == 0:
        rec.error = ErrorRecord("empty", "the file is empty")
        return
    if rec.media_type is None:
        rec.error = ErrorRecord("not_media", "not a picture or video: the bytes match no known media format")
        return
    if not rec.media_type.startswith("image/"):
        return  # videos: digests only here; vPDQ belongs to the scanner
    if data is None:
        rec.error = ErrorRecord("too_large", f"file of {rec.size:,} bytes is over the limit of "
                                f"{settings.max_file_bytes:,} for decoding; digests were computed")
        return
    try:
        rgb = decode_image(data, max_pixels=settings.max_pixels, fast=settings.fast_decode,
                           alpha=settings.alpha, background=settings.alpha_background)
        if variants:
            from vigie.signals.variants import compute_variants

            h, rec.pdq_variants = compute_variants(rgb, settings, data=data)
        else:
            h = pdq_signal.hash_rgb(rgb, engine=settings.pdq_engine)
            # HMA's hash of modes it hashes otherwise (palette, CMYK...) is kept even without the other
            # variants: it is the value partners' lists hold for this file (docs/hashing.md).
            from vigie.signals.variants import hma_variant

            hma = hma_variant(data, settings)
            if hma is not None and hma["pdq"] != h.hex:
                rec.pdq_variants = [hma]
        rec.pdq, rec.pdq_quality = h.hex, h.quality
    except MediaError as exc:
        rec.error = ErrorRecord(exc.code, exc.message)


def hash_file(path: str | os.PathLike, settings: Settings, *, variants: bool = False) -> HashRecord:
    """Hash one file; never raises for a bad file (the record carries the error)."""
    p = os.fspath(path)
    rec = HashRecord(path=p)
    try:
        with time_limit(settings.file_timeout):
            _hash_path(rec, p, settings, variants)
    except FileTimeout:
        rec.error = ErrorRecord("timeout", f"gave up after {settings.file_timeout:g} s")
    except MemoryError:
        rec.error = ErrorRecord("too_large", "out of memory while decoding")
    except Exception as exc:  # noqa: BLE001 - a batch never stops for one file
        rec.error = ErrorRecord("internal_error", f"{type(exc).__name__}: {exc}")
    return rec


def _hash_path(rec: HashRecord, p: str, settings: Settings, variants: bool) -> None:
    try:
        st = os.stat(p)
    except OSError as exc:
        code = "symlink_loop" if exc.errno == 40 else "unreadable"
        rec.error = ErrorRecord(code, f"cannot read: {exc.strerror or exc}")
        return
    if stat.S_ISDIR(st.st_mode):
        rec.error = ErrorRecord("is_directory", "a folder (use --recursive to hash what it holds)")
        return
    if not stat.S_ISREG(st.st_mode):
        rec.error = ErrorRecord("special_file", "not a regular file (FIFO, device or socket): skipped")
        return
    try:
        data, digests, size = read_file(p, settings.max_file_bytes)
    except ReadError as exc:
        rec.error = ErrorRecord("unreadable", str(exc))
        return
    rec.size = size
    for n, v in digests.items():
        setattr(rec, n, v)
    head = data[:SNIFF_BYTES] if data is not None else _head(p)
    rec.media_type = sniff(head)
    _hash_pixels(rec, data, settings, variants)


class ReadError(Exception):
    pass


def read_file(path: str, max_bytes: int) -> tuple[bytes | None, dict[str, str], int]:
    """Read a file once: its digests, its size, and its bytes when they are at most `max_bytes`
    (None otherwise: huge files are streamed through the digests, never held)."""
    hs = {n: hashlib.new(n) for n in DIGESTS}
    buf: io.BytesIO | None = io.BytesIO()
    size = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                size += len(chunk)
                for h in hs.values():
                    h.update(chunk)
                if buf is not None:
                    if size > max_bytes:
                        buf = None
                    else:
                        buf.write(chunk)
    except OSError as exc:
        raise ReadError(f"read failed after {size:,} bytes: {exc.strerror or exc}") from None
    return (buf.getvalue() if buf is not None else None), {n: h.hexdigest() for n, h in hs.items()}, size


def digests_only(path: str | None = None, data: bytes | None = None) -> tuple[dict[str, str], int, str | None]:
    """The digests, size and media type of a file or of bytes, nothing decoded: what is kept of a file whose
    decoder crashed or hung in a worker, read again where a decoder never runs (a known file is still matched
    by them). Raises OSError or ReadError when the file cannot be read."""
    if data is not None:
        return {n: hashlib.new(n, data).hexdigest() for n in DIGESTS}, len(data), sniff(data[:SNIFF_BYTES])
    head, digests, size = read_file(path, SNIFF_BYTES)
    return digests, size, sniff(head if head is not None else _head(path))


def _head(path: str) -> bytes:
    """The first bytes of a file, enough to tell its type."""
    with open(path, "rb") as f:
        return f.read(SNIFF_BYTES)


#: The stages `stage_times` reports, in the order a picture goes through them.
STAGES = ("digests", "decode", "pdq", "hma_compat", "dihedral", "border", "region")


def stage_times(data: bytes, settings: Settings, *, variants: bool = True) -> dict[str, float]:
    """Hash one picture's bytes as `hash_bytes` does and say where the time went: milliseconds per stage
    (`STAGES`: MD5+SHA-1+SHA-256, decode, plain PDQ, hma_compat, the seven dihedral variants, border
    detection with its `unbordered` hashes, region detection with its `region*` hashes) and `total`.

    For the scan and crawl benches: one call per picture, summed over a run, shows what to speed up.
    Stages that did not run (no variants, a picture whose quality is too low for them) are 0. The first call
    in a process also loads the compiled kernels (a second or so): time from the second call, or call
    `vigie.signals.variants.warm_up()` first. Raises MediaError when the bytes do not decode."""
    out = dict.fromkeys(STAGES, 0.0)
    t0 = t = time.perf_counter()
    for name in DIGESTS:
        hashlib.new(name, data).hexdigest()
    out["digests"] = time.perf_counter() - t
    t = time.perf_counter()
    rgb = decode_image(data, max_pixels=settings.max_pixels, fast=settings.fast_decode,
                       alpha=settings.alpha, background=settings.alpha_background)
    out["decode"] = time.perf_counter() - t
    if variants:
        from vigie.signals.variants import compute_variants

        compute_variants(rgb, settings, data=data, timings=out)
    else:
        from vigie.signals.variants import hma_variant

        t = time.perf_counter()
        pdq_signal.hash_rgb(rgb, engine=settings.pdq_engine)
        out["pdq"] = time.perf_counter() - t
        t = time.perf_counter()
        hma_variant(data, settings)
        out["hma_compat"] = time.perf_counter() - t
    out["total"] = time.perf_counter() - t0
    return {k: 1000.0 * v for k, v in out.items()}
