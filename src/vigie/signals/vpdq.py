"""vPDQ, Meta's video hash: the PDQ hash of video frames, with their number, quality and time.

What this module reproduces (Meta's reference: `vpdq/cpp` in facebook/ThreatExchange, the
`vpdq` pip package, python-threatexchange's `VPDQSignal` used by HMA):

* **Frames.** Every frame of the first video stream is decoded in output order and numbered
  0, 1, 2, ... (the decoder's frame counter minus one). A frame is hashed when
  ``frame_number % frame_mod == 0`` with ``frame_mod = max(1, int(seconds_per_hash * fps))``:
  ``seconds_per_hash=0`` hashes every frame, the default 1.0 hashes frames 0, fps, 2*fps, ...
  (frames 0, 30, 60 at 30 fps; 0, 29, 58 at 29.97 fps, since int() truncates), i.e. the
  **first frame of each interval**. ``fps`` is the stream's average frame rate, else its
  real base rate (``avg_frame_rate``, else ``r_frame_rate``).
* **Pixels.** Each chosen frame is converted by swscale to RGB24 with area interpolation, at the
  stream's coded size or at ``downsample=(w, h)`` when given (upstream's ``-s 128`` is 128x128),
  then hashed with Vigie's PDQ (bit-exact with Meta's ``pdqhash``).
* **Timestamp.** ``frame_number / fps`` in float32 (not the packet time), 3 decimals.
* **Serialisation.** Meta's C++ tools and `sample-hashes/*.txt`: one line per frame
  ``frame_number,quality,pdq_hex,timestamp`` (timestamp ``%.3f``). python-threatexchange /
  HMA: a JSON list of ``"pdq_hex,quality,timestamp"`` strings (no frame number). Vigie's
  canonical signal value is the C++ line format joined with ``;`` (one line, safe in CSV cells).
* **Match rule** (vpdq/README.md, python-threatexchange ``match_VPDQ_hash_brute``): keep frames of
  quality >= 50, keep one frame per distinct hash, count the query frames that lie within
  Hamming distance 31 of some target frame and vice versa; ``query_pct`` and ``target_pct`` are
  those counts in percent. python-threatexchange and HMA call it a match when
  ``query_pct >= 80`` and ``target_pct >= 0``.

Decoding goes through PyAV's bundled FFmpeg, so frame hashes are close to, not bit-exact
with, the reference built on another FFmpeg; upstream says the same of its own builds.
See docs/video.md for the measured conformance.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO, ClassVar

import numpy as np

from vigie.errors import InvalidHash, MediaError
from vigie.signals.base import SignalType

#: Meta's defaults (python-threatexchange `vpdq_util`, HMA).
DISTANCE_THRESHOLD = 31
QUALITY_THRESHOLD = 50
QUERY_MATCH_THRESHOLD_PCT = 80.0
TARGET_MATCH_THRESHOLD_PCT = 0.0
#: Hashes longer than this are refused when parsed (about 9 hours at 30 fps, every frame).
MAX_FEATURES = 1_000_000
#: Frames narrower or lower than this are not hashed (upstream's MIN_HASHABLE_DIM).
MIN_HASHABLE_DIM = 5

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


# --------------------------------------------------------------------------- features


@dataclass(frozen=True)
class VpdqFeature:
    """One hashed frame. `timestamp` is in seconds, rounded to 3 decimals."""

    frame_number: int
    quality: int
    pdq_hex: str
    timestamp: float

    def line(self) -> str:
        """The C++ / sample-hashes line: ``frame_number,quality,pdq_hex,timestamp``."""
        return f"{self.frame_number},{self.quality},{self.pdq_hex},{self.timestamp:.3f}"

    def compact(self) -> str:
        """python-threatexchange's ``VpdqCompactFeature`` string: ``pdq_hex,quality,timestamp``."""
        return f"{self.pdq_hex},{self.quality},{self.timestamp:.3f}"


def _bad(msg: str) -> InvalidHash:
    return InvalidHash(f"vpdq: {msg}")


def _check_feature(frame: Any, quality: Any, hex_: Any, ts: Any, where: str) -> VpdqFeature:
    try:
        fn = int(frame)
        q = int(quality)
        t = float(ts)
    except (TypeError, ValueError):
        raise _bad(f"{where}: frame number, quality and timestamp must be numbers") from None
    h = str(hex_).strip().lower().removeprefix("0x")
    if not _HEX64.match(h):
        raise _bad(f"{where}: expected a 64-hex-character PDQ hash, got {str(hex_)[:80]!r}")
    if fn < 0:
        raise _bad(f"{where}: negative frame number {fn}")
    if not 0 <= q <= 100:
        raise _bad(f"{where}: quality {q} is not in 0..100")
    if not math.isfinite(t) or t < 0:
        raise _bad(f"{where}: invalid timestamp {ts!r}")
    return VpdqFeature(fn, q, h, round(t, 3))


def parse_features(value: str) -> list[VpdqFeature]:
    """Read a vPDQ hash in any of the formats in use; InvalidHash when it is not one.

    Accepted: C++ / sample-hashes lines ``frame,quality,hex,timestamp`` separated by newlines
    or ``;``; python-threatexchange's JSON list of ``"hex,quality,timestamp"`` strings (frame
    numbers are then the positions 0, 1, 2 ...: that format does not carry them); the older
    python-threatexchange JSON object ``{"<frame>": {"quality", "hash", "timestamp"}}``; and
    bare ``hex,quality,timestamp`` lines. Frame numbers must increase strictly; at least one
    frame is required.
    """
    if not isinstance(value, str):
        raise _bad(f"expected a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise _bad("empty hash (no frames)")
    feats: list[VpdqFeature] = []
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _bad(f"not valid JSON: {exc}") from None
        if isinstance(data, list):
            for i, s in enumerate(data):
                if not isinstance(s, str) or s.count(",") != 2:
                    raise _bad(f"item {i}: expected 'pdq_hex,quality,timestamp', got {str(s)[:80]!r}")
                h, q, t = s.split(",")
                feats.append(_check_feature(i, q, h, t, f"item {i}"))
        elif isinstance(data, dict):
            items = []
            for k, v in data.items():
                if not isinstance(v, dict) or not {"quality", "hash", "timestamp"} <= v.keys():
                    raise _bad(f"frame {k!r}: expected an object with quality, hash and timestamp")
                items.append(_check_feature(k, v["quality"], v["hash"], v["timestamp"], f"frame {k!r}"))
            feats = sorted(items, key=lambda f: f.frame_number)
        else:
            raise _bad("JSON must be a list or an object")
    else:
        lines = [x.strip() for x in re.split(r"[;\n\r]+", text) if x.strip()]
        for i, ln in enumerate(lines):
            parts = [p.strip() for p in ln.split(",")]
            if len(parts) == 4:
                feats.append(_check_feature(parts[0], parts[1], parts[2], parts[3], f"line {i + 1}"))
            elif len(parts) == 3:
                feats.append(_check_feature(i, parts[1], parts[0], parts[2], f"line {i + 1}"))
            else:
                raise _bad(f"line {i + 1}: expected 'frame_number,quality,pdq_hex,timestamp', got {ln[:80]!r}")
            if len(feats) > MAX_FEATURES:
                raise _bad(f"more than {MAX_FEATURES:,} frames")
    if not feats:
        raise _bad("empty hash (no frames)")
    if len(feats) > MAX_FEATURES:
        raise _bad(f"more than {MAX_FEATURES:,} frames")
    for a, b in zip(feats, feats[1:]):
        if b.frame_number <= a.frame_number:
            raise _bad(f"frame numbers must increase ({a.frame_number} then {b.frame_number})")
    return feats


def to_text(features: Iterable[VpdqFeature], sep: str = "\n") -> str:
    """The C++ format (sample-hashes .txt with ``sep='\\n'``, Vigie's signal value with ``';'``)."""
    body = sep.join(f.line() for f in features)
    return body + "\n" if sep == "\n" and body else body


def to_pytx_json(features: Iterable[VpdqFeature]) -> str:
    """python-threatexchange / HMA's signal string: a JSON list of ``"pdq_hex,quality,timestamp"``."""
    return json.dumps([f.compact() for f in features])


class VpdqSignal(SignalType):
    """vPDQ as a bank signal. Its value is the frame list, canonically C++ lines joined by ``;``.

    `distance(a, b)` is ``100 - floor(min(query_pct, target_pct))`` under Meta's frame rule
    (quality >= 50, Hamming <= 31): 0 when every kept frame of each video is found in the
    other, 100 when nothing matches. Use :func:`match_vpdq` for the thresholded decision.
    """

    name = "vpdq"
    #: Per frame; the value itself has variable length.
    hex_length = 64
    fuzzy = True
    default_threshold: ClassVar[int] = DISTANCE_THRESHOLD
    quality_floor: ClassVar[int] = QUALITY_THRESHOLD

    @classmethod
    def normalise(cls, value: str) -> str:
        return to_text(parse_features(value), sep=";")

    @classmethod
    def parse(cls, value: str) -> list[VpdqFeature]:
        return parse_features(value)

    @classmethod
    def key(cls, value: str) -> str:
        """A frame list can run to megabytes: the store indexes its SHA-256 and keeps the list beside it."""
        import hashlib

        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        m = match_vpdq(parse_features(a), parse_features(b))
        return 100 - int(min(m.query_pct, m.target_pct))


# --------------------------------------------------------------------------- hashing


@dataclass
class VideoHash:
    """The vPDQ of one video and what the decoder saw.

    `duration` is the decoded span, ``frames_decoded / fps`` (seconds). `frames_failed` counts
    packets the decoder rejected and chosen frames that could not be hashed; both are skipped
    (a rejected packet yields no frame, so it takes no frame number).
    `truncated` is True only when ``allow_partial=True`` let a short file through; `limited`
    when decoding stopped at `max_seconds`.
    """

    features: list[VpdqFeature]
    duration: float
    fps: float
    width: int
    height: int
    frames_decoded: int
    frames_failed: int = 0
    codec: str = ""
    truncated: bool = False
    limited: bool = False
    seconds_per_hash: float = 1.0

    @property
    def value(self) -> str:
        """Vigie's canonical signal value (C++ lines joined by ``;``)."""
        return to_text(self.features, sep=";")

    def to_text(self) -> str:
        return to_text(self.features)

    def to_pytx_json(self) -> str:
        return to_pytx_json(self.features)


_BMFF_TOP = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"meta", b"moof", b"styp"}


def _bmff_cut(fp: BinaryIO) -> bool:
    """True when `fp` is an MP4 / MOV (ISO base media) whose last top-level box runs past the end
    of the file: it was cut short. FFmpeg only says "invalid data" (the index is missing)."""
    try:
        start = fp.tell()
        end = fp.seek(0, io.SEEK_END)
        pos, boxes = 0, 0
        try:
            while pos + 8 <= end and boxes < 10_000:
                fp.seek(pos)
                head = fp.read(16)
                size, kind = int.from_bytes(head[:4], "big"), head[4:8]
                if boxes == 0 and kind not in _BMFF_TOP:
                    return False
                if not kind.isalnum() and kind not in _BMFF_TOP:
                    return False
                if size == 1:
                    if len(head) < 16:
                        return True
                    size = int.from_bytes(head[8:16], "big")
                elif size == 0:  # runs to the end of the file by definition
                    return False
                if size < 8:
                    return False
                if pos + size > end:
                    return True
                pos += size
                boxes += 1
            return 0 < pos < end and boxes > 0 and end - pos < 8
        finally:
            fp.seek(start)
    except (OSError, ValueError):
        return False


def _classify_open(exc: BaseException, cut: bool = False) -> MediaError:
    import av

    msg = str(exc) or type(exc).__name__
    if isinstance(exc, MediaError):
        return exc
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)) or (
            isinstance(exc, OSError) and not isinstance(exc, av.error.FFmpegError)):
        return MediaError(f"cannot read the video: {msg}", code="unreadable")
    if isinstance(exc, av.error.EOFError) or "end of file" in msg.lower():
        return MediaError(f"video ends early: {msg}", code="truncated")
    if cut:
        return MediaError(f"video ends early (an MP4/MOV box runs past the end of the file): {msg}",
                          code="truncated")
    return MediaError(f"not a video Vigie can decode: {msg}", code="corrupt")


class _Opened:
    """An opened container plus what must be closed with it."""

    def __init__(self, source: Source):
        import av

        self._own: BinaryIO | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise MediaError("the video has no bytes", code="empty")
            self._own = io.BytesIO(bytes(source))
            target: Any = self._own
        elif isinstance(source, (str, os.PathLike)):
            target = os.fspath(source)
            try:
                if os.path.getsize(target) == 0:
                    raise MediaError("the video has no bytes", code="empty")
            except OSError as exc:
                raise MediaError(f"cannot read the video: {exc}", code="unreadable") from None
        else:
            target = source
        try:
            self.container = av.open(target, mode="r", metadata_errors="ignore")
        except Exception as exc:  # noqa: BLE001 - every failure becomes a MediaError
            cut = False
            try:
                if isinstance(target, str):
                    with open(target, "rb") as f:
                        cut = _bmff_cut(f)
                elif hasattr(target, "seek") and (not hasattr(target, "seekable") or target.seekable()):
                    cut = _bmff_cut(target)
            except OSError:
                pass
            if self._own is not None:
                self._own.close()
            raise _classify_open(exc, cut) from None
        if not self.container.streams.video:
            kinds = sorted({str(s.type) for s in self.container.streams})
            self.close()
            if not kinds:
                raise MediaError("no stream could be read from the container", code="corrupt")
            raise MediaError(f"no video stream (streams: {', '.join(kinds)})", code="unsupported")
        self.stream = self.container.streams.video[0]

    def close(self) -> None:
        try:
            self.container.close()
        finally:
            if self._own is not None:
                self._own.close()

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _frame_rate(stream) -> float:
    for rate in (stream.average_rate, getattr(stream, "base_rate", None), getattr(stream, "guessed_rate", None)):
        if rate is not None and rate.numerator > 0 and rate.denominator > 0:
            return float(Fraction(rate.numerator, rate.denominator))
    return 0.0


def _expected_end(opened: _Opened) -> tuple[int | None, float | None]:
    """What the container promises: (frame count, video duration in seconds), each if known."""
    s = opened.stream
    frames = int(s.frames) if s.frames else None
    dur = None
    if s.duration is not None and s.time_base is not None:
        dur = float(s.duration * s.time_base)
    elif opened.container.duration is not None and len(opened.container.streams) == 1:
        dur = opened.container.duration / 1_000_000
    return frames, dur


def _start_time(opened: _Opened) -> float | None:
    s = opened.stream
    if s.start_time is not None and s.time_base is not None:
        return float(s.start_time * s.time_base)
    return None


def _duration_origin(opened: _Opened) -> float | None:
    """Where the announced duration counts from: the stream's start for a stream duration; time 0 for a
    container duration (Matroska's segment duration counts from 0 even when the first frame is at 1.5 s;
    other containers count from their start, and measuring from 0 then only errs towards accepting)."""
    if opened.stream.duration is not None:
        return _start_time(opened)
    return 0.0


class _Presentation:
    """The presentation times of the decoded frames, for the duration rule.

    A variable-frame-rate video (a phone's MKV or MP4, a screen recording) shows its frames for
    unequal times: its frame count over its average rate is not its length, and that rule refused
    valid files as `truncated`. What the decoder presented is measured instead: the time of the last
    frame shown plus how long it lasts (its own duration, else the longest gap seen between frames).
    Meta's vpdq has no such rule (it hashes whatever decodes); Vigie keeps one so that a file cut
    short is told apart from a complete one.
    """

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.last_len = 0.0
        self.max_gap = 0.0
        self.min_gap: float | None = None

    def see(self, frame) -> None:
        t = frame.time
        if t is None:
            return
        t = float(t)
        if self.last is not None and t > self.last:
            gap = t - self.last
            self.max_gap = max(self.max_gap, gap)
            self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
        self.first = t if self.first is None else min(self.first, t)
        self.last = t if self.last is None else max(self.last, t)
        dur = getattr(frame, "duration", None)
        tb = frame.time_base
        self.last_len = float(dur * tb) if dur and tb is not None else 0.0

    @property
    def irregular(self) -> bool:
        """Frames shown for clearly unequal times (more than 10 % apart)."""
        return self.min_gap is not None and self.max_gap > self.min_gap * 1.1 + 1e-3

    def span(self, start: float | None) -> float | None:
        if self.last is None:
            return None
        origin = start if start is not None else self.first
        return max(0.0, self.last - (origin or 0.0)) + (self.last_len or self.max_gap)

    def short_of(self, expected: float, n: int, fps: float, start: float | None) -> str | None:
        """Why the decoded video falls short of `expected` seconds, or None when it does not."""
        got = self.span(start)
        if got is None:  # no presentation times: the frame count at the average rate
            if fps <= 0:
                return None
            got, slack = n / fps, 2 / fps
        else:
            slack = max(2 / fps if fps > 0 else 0.0, self.max_gap, self.last_len)
        if got < expected * 0.98 - slack:
            return f"{got:.2f} s decoded of {expected:.2f} s announced"
        return None


def _decode(opened: _Opened, counters: dict):
    """Decoded frames of the video stream in output order; decoder errors are skipped and counted,
    a demuxer error ends the stream (recorded in counters['read_error'])."""
    import av

    packets = opened.container.demux(opened.stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            counters["read_error"] = str(exc) or type(exc).__name__
            break
        try:
            frames = packet.decode()
        except (av.error.FFmpegError, ValueError) as exc:
            counters["failed"] += 1
            counters["last_error"] = str(exc)
            continue
        yield from frames
    # the demuxer failed: still drain what the decoder holds
    try:
        yield from opened.stream.codec_context.decode(None)
    except (av.error.FFmpegError, ValueError):
        pass


def hash_video(source: Source, *, seconds_per_hash: float = 1.0, downsample: tuple[int, int] | None = None,
               max_seconds: float | None = None, engine: str = "numba", allow_partial: bool = False,
               max_pixels: int | None = 100_000_000) -> VideoHash:
    """The vPDQ of a video (path, bytes or binary file object), Meta's reference frame rule.

    `seconds_per_hash`: 0 hashes every frame; otherwise the first frame of each interval
    (frame numbers divisible by ``max(1, int(seconds_per_hash * fps))``). `downsample`: scale
    every hashed frame to (width, height) first, as upstream's ``-s``. `max_seconds`: stop
    decoding at this point of the video (frames at or after it are not read; `limited` is set).
    `max_pixels`: refuse (``too_large``) a stream whose frames are larger than this.

    Raises MediaError: ``empty``, ``unreadable``, ``corrupt`` (no frame decodes, or the
    container cannot be read), ``truncated`` (fewer frames or seconds than the container
    promises, or a read error before the end; ``allow_partial=True`` returns what was hashed,
    with ``truncated=True``, instead when at least one frame was hashed), ``unsupported``
    (no video stream).
    """
    if seconds_per_hash < 0 or not math.isfinite(seconds_per_hash):
        raise ValueError("seconds_per_hash must be >= 0")
    if downsample is not None and (len(downsample) != 2 or min(downsample) < 0):
        raise ValueError("downsample must be (width, height), non-negative")
    from vigie.signals.pdq import hash_rgb

    with _Opened(source) as opened:
        stream = opened.stream
        stream.thread_type = "AUTO"
        cc = stream.codec_context
        fps = _frame_rate(stream)
        width, height = int(cc.width or 0), int(cc.height or 0)
        if downsample is not None:
            width = int(downsample[0]) or width
            height = int(downsample[1]) or height
        if max_pixels is not None and int(cc.width or 0) * int(cc.height or 0) > max_pixels:
            raise MediaError(f"video frames of {cc.width}x{cc.height} are over the limit of {max_pixels:,} pixels",
                             code="too_large")
        frame_mod = max(1, int(seconds_per_hash * fps)) if fps > 0 else 1
        fps32 = np.float32(fps)
        counters: dict[str, Any] = {"failed": 0}
        feats: list[VpdqFeature] = []
        n = 0
        limited = False
        t0: float | None = None
        next_due = 0.0
        shown = _Presentation()
        for frame in _decode(opened, counters):
            shown.see(frame)
            if fps > 0:
                ts = float(np.float32(n) / fps32)
                due = n % frame_mod == 0
            else:  # no frame rate in the container: use presentation times
                t = float(frame.time) if frame.time is not None else 0.0
                t0 = t if t0 is None else t0
                ts = max(0.0, t - t0)
                due = seconds_per_hash == 0 or ts + 1e-9 >= next_due
                if due and seconds_per_hash > 0:
                    while next_due <= ts + 1e-9:
                        next_due += seconds_per_hash
            if max_seconds is not None and ts >= max_seconds:
                limited = True
                break
            if due:
                w, h = (width or frame.width), (height or frame.height)
                if w < MIN_HASHABLE_DIM or h < MIN_HASHABLE_DIM:
                    counters["failed"] += 1
                else:
                    try:
                        rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()
                        ph = hash_rgb(rgb, engine=engine)
                        feats.append(VpdqFeature(n, int(ph.quality), ph.hex, round(ts, 3)))
                    except (ValueError, MemoryError) as exc:
                        counters["failed"] += 1
                        counters["last_error"] = str(exc)
            n += 1
        if n == 0 and not limited:
            why = counters.get("read_error") or counters.get("last_error") or "no frame decodes"
            raise MediaError(f"no video frame could be decoded: {why}", code="corrupt")
        truncated_why = None
        if not limited:
            exp_frames, exp_dur = _expected_end(opened)
            if counters.get("read_error"):
                truncated_why = f"read error after {n} frames: {counters['read_error']}"
            elif exp_frames and n < exp_frames * 0.98 - 2:
                truncated_why = f"{n} frames decoded of {exp_frames} announced"
            elif exp_dur:
                truncated_why = shown.short_of(exp_dur, n, fps, _duration_origin(opened))
        if truncated_why and not (allow_partial and feats):
            raise MediaError(f"video ends early: {truncated_why}", code="truncated")
        span = shown.span(_start_time(opened))
        return VideoHash(
            features=feats,
            duration=round(span, 3) if span is not None and fps > 0 and shown.irregular else
            round(n / fps, 3) if fps > 0 else (feats[-1].timestamp if feats else 0.0),
            fps=fps, width=width, height=height, frames_decoded=n, frames_failed=counters["failed"],
            codec=cc.name or "", truncated=truncated_why is not None, limited=limited,
            seconds_per_hash=seconds_per_hash,
        )


def keyframes(source: Source, count: int = 4, *, max_side: int | None = None) -> list[np.ndarray]:
    """Up to `count` RGB frames (HxWx3 uint8) spread over the video, for an analyst's review.

    Frames are taken at the middles of `count` equal parts of the duration, by seeking when the
    container allows it and by one sequential pass otherwise. `max_side` shrinks them (keeping the
    aspect ratio). Same MediaError codes as :func:`hash_video`; an unreadable frame is left out.
    """
    import av

    if count <= 0:
        return []

    def rgb(frame) -> np.ndarray:
        w, h = frame.width, frame.height
        if max_side and max(w, h) > max_side:
            s = max_side / max(w, h)
            w, h = max(1, round(w * s)), max(1, round(h * s))
        return frame.reformat(width=w, height=h, format="rgb24", interpolation="AREA").to_ndarray()

    with _Opened(source) as opened:
        stream = opened.stream
        _, dur = _expected_end(opened)
        if dur is None and opened.container.duration:
            dur = opened.container.duration / 1_000_000
        out: list[np.ndarray] = []
        if dur and dur > 0 and stream.time_base is not None:
            try:
                start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
                for i in range(count):
                    t = start + dur * (i + 0.5) / count
                    opened.container.seek(int(t / stream.time_base), stream=stream, backward=True)
                    frame = None
                    for frame in _decode(opened, {"failed": 0}):
                        if frame.time is None or frame.time >= t - 1e-3:
                            break
                    if frame is not None:
                        out.append(rgb(frame))
                if len(out) == count:
                    return out
            except (av.error.FFmpegError, ValueError, OSError):
                pass
            out = []
            try:
                opened.container.seek(0)
            except (av.error.FFmpegError, ValueError, OSError):
                pass
        # Sequential fallback in bounded memory: keep every `stride`-th frame (as a small RGB
        # array); when the buffer is full, drop every other one and double the stride.
        kept: list[np.ndarray] = []
        stride = 1
        for n, frame in enumerate(_decode(opened, {"failed": 0})):
            if n % stride == 0:
                kept.append(rgb(frame))
                if len(kept) >= 8 * count:
                    kept, stride = kept[::2], stride * 2
        if not kept:
            raise MediaError("no video frame could be decoded", code="corrupt")
        picks = sorted({min(len(kept) - 1, int(len(kept) * (i + 0.5) / count)) for i in range(count)})
        return [kept[i] for i in picks]


# --------------------------------------------------------------------------- matching


def _words(hexes: Sequence[str]) -> np.ndarray:
    if not hexes:
        return np.zeros((0, 4), dtype=np.uint64)
    return np.frombuffer(bytes.fromhex("".join(hexes)), dtype=">u8").astype(np.uint64).reshape(-1, 4)


def _min_distances(a: np.ndarray, b: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """For each row of `a`, the smallest Hamming distance to any row of `b` (257 when b is empty)."""
    out = np.full(a.shape[0], 257, dtype=np.int32)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return out
    step = max(1, chunk * 64 // max(1, b.shape[0]))
    for i in range(0, a.shape[0], step):
        x = a[i:i + step, None, :] ^ b[None, :, :]
        out[i:i + step] = np.bitwise_count(x).sum(axis=2, dtype=np.int32).min(axis=1)
    return out


def _prepare(features: Sequence[VpdqFeature], quality: int) -> tuple[list[str], list[VpdqFeature]]:
    """(unique hashes of the kept frames in first-seen order, kept frames)."""
    kept = [f for f in features if f.quality >= quality]
    return list(dict.fromkeys(f.pdq_hex for f in kept)), kept


@dataclass(frozen=True)
class VideoMatch:
    """The comparison of a query video with a target (known) video.

    `query_pct`: percentage of the query's unique kept frames found in the target; `target_pct`:
    the reverse. `start`/`end`: first and last timestamps of the query frames that matched (the
    span of the query where the target's content is, to within one sampling interval);
    `target_start`/`target_end`: the same in the target. None when nothing matched.
    """

    query_pct: float
    target_pct: float
    matched: bool
    start: float | None = None
    end: float | None = None
    target_start: float | None = None
    target_end: float | None = None
    query_frames: int = 0
    target_frames: int = 0


def match_vpdq(query: Sequence[VpdqFeature], target: Sequence[VpdqFeature], *, distance: int = DISTANCE_THRESHOLD,
               quality: int = QUALITY_THRESHOLD, query_threshold: float = QUERY_MATCH_THRESHOLD_PCT,
               target_threshold: float = TARGET_MATCH_THRESHOLD_PCT) -> VideoMatch:
    """Meta's video-level rule. Frames below `quality` are dropped, then duplicates (same hash);
    a frame matches when some frame of the other video is within `distance` bits.
    ``matched = query_pct >= query_threshold and target_pct >= target_threshold`` with
    python-threatexchange / HMA defaults (80, 0). An empty side gives 0 %.
    """
    qh, qkept = _prepare(query, quality)
    th, tkept = _prepare(target, quality)
    qw, tw = _words(qh), _words(th)
    q_ok = _min_distances(qw, tw) <= distance
    t_ok = _min_distances(tw, qw) <= distance
    q_pct = float(q_ok.sum()) * 100 / len(qh) if qh else 0.0
    t_pct = float(t_ok.sum()) * 100 / len(th) if th else 0.0
    q_hit = {h for h, ok in zip(qh, q_ok.tolist()) if ok}
    t_hit = {h for h, ok in zip(th, t_ok.tolist()) if ok}
    q_times = [f.timestamp for f in qkept if f.pdq_hex in q_hit]
    t_times = [f.timestamp for f in tkept if f.pdq_hex in t_hit]
    return VideoMatch(
        query_pct=q_pct, target_pct=t_pct,
        matched=bool(qh and th and q_pct >= query_threshold and t_pct >= target_threshold),
        start=min(q_times) if q_times else None, end=max(q_times) if q_times else None,
        target_start=min(t_times) if t_times else None, target_end=max(t_times) if t_times else None,
        query_frames=len(qh), target_frames=len(th),
    )


@dataclass
class FrameHit:
    """A known picture seen in a video: where first and last, in how many hashed frames, how close."""

    id: Any
    first: float
    last: float
    frames: int
    best_distance: int
    frame_numbers: list[int] = field(default_factory=list)


SearchFn = Callable[[np.ndarray, int], Sequence[Sequence[tuple[Any, int]]]]


def _brute_search(known: Sequence[tuple[Any, str]]) -> SearchFn:
    ids = [k for k, _ in known]
    words = _words([_pdq_hex(h) for _, h in known])

    def search(queries: np.ndarray, threshold: int) -> list[list[tuple[Any, int]]]:
        qw = queries.view(">u8").astype(np.uint64).reshape(-1, 4)
        out = []
        for row in qw:
            d = np.bitwise_count(row[None, :] ^ words).sum(axis=1)
            hit = np.nonzero(d <= threshold)[0]
            out.append(sorted(((ids[i], int(d[i])) for i in hit.tolist()), key=lambda x: x[1]))
        return out

    return search


def _pdq_hex(value: str) -> str:
    h = str(value).strip().lower().removeprefix("0x")
    if not _HEX64.match(h):
        raise _bad(f"expected a 64-hex-character PDQ hash, got {str(value)[:80]!r}")
    return h


def match_frames_to_pdq(features: Sequence[VpdqFeature], known: Sequence[tuple[Any, str]] | SearchFn, *,
                        distance: int = DISTANCE_THRESHOLD, quality: int = QUALITY_THRESHOLD) -> list[FrameHit]:
    """Which known pictures appear in the video, and when.

    `known` is either a list of (id, pdq_hex) or a search callable with the signature of
    ``vigie.index`` ``PdqIndex.search``: ``search(queries: (n, 32) uint8, threshold) ->
    [[(id, distance), ...] per query]``. Frames below `quality` are not searched. Returns one
    FrameHit per matched id, ordered by first appearance.
    """
    search = known if callable(known) else _brute_search(list(known))
    kept = [f for f in features if f.quality >= quality]
    uniq = list(dict.fromkeys(f.pdq_hex for f in kept))
    if not uniq:
        return []
    queries = np.frombuffer(bytes.fromhex("".join(uniq)), dtype=np.uint8).reshape(-1, 32).copy()
    per_hash = dict(zip(uniq, search(queries, distance)))
    hits: dict[Any, FrameHit] = {}
    for f in kept:
        for eid, d in per_hash.get(f.pdq_hex, ()):
            h = hits.get(eid)
            if h is None:
                hits[eid] = FrameHit(eid, f.timestamp, f.timestamp, 1, int(d), [f.frame_number])
            else:
                h.first = min(h.first, f.timestamp)
                h.last = max(h.last, f.timestamp)
                h.frames += 1
                h.best_distance = min(h.best_distance, int(d))
                h.frame_numbers.append(f.frame_number)
    return sorted(hits.values(), key=lambda h: (h.first, h.best_distance))


__all__ = [
    "DISTANCE_THRESHOLD", "QUALITY_THRESHOLD", "QUERY_MATCH_THRESHOLD_PCT", "TARGET_MATCH_THRESHOLD_PCT",
    "FrameHit", "VideoHash", "VideoMatch", "VpdqFeature", "VpdqSignal", "hash_video", "keyframes",
    "match_frames_to_pdq", "match_vpdq", "parse_features", "to_pytx_json", "to_text",
]
