"""vPDQ: conformance with Meta's sample hashes, and behaviour on generated (benign) videos.

Only benign material: the conformance videos (a doorknob, patterns) are read in place from
the shared folder, and every other video is generated here from colour fields and moving
shapes (`vigie.demo.photo_like`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest

from vigie.demo import photo_like
from vigie.errors import InvalidHash, MediaError
from vigie.signals.base import hamming_hex
from vigie.signals.pdq import hash_rgb
from vigie.signals.vpdq import (
    VideoHash,
    VpdqFeature,
    VpdqSignal,
    hash_video,
    keyframes,
    match_frames_to_pdq,
    match_vpdq,
    parse_features,
    to_pytx_json,
    to_text,
)

VPDQ = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / "vpdq"
VIDEOS = VPDQ / "sample-videos"
HASHES = VPDQ / "sample-hashes"


# --------------------------------------------------------------------------- conformance


def _conformance_cases() -> list:
    if not VIDEOS.is_dir():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"conformance videos absent: {VIDEOS}"))]
    cases = []
    for video in sorted(VIDEOS.glob("*.mp4")):
        for variant in ("native", "128x128"):
            ref = HASHES / (f"{video.stem}.txt" if variant == "native" else f"{video.stem}-128x128.txt")
            if ref.exists():
                cases.append(pytest.param(video, variant, id=f"{video.stem}-{variant}"))
    return cases


@pytest.mark.parametrize(("video", "variant"), _conformance_cases())
def test_conformance_byline(video: Path, variant: str):
    """upstream regtest.py + match-hashes-byline: line i against line i, skip pairs with a quality
    below 50, a pair matches at Hamming distance <= 31; upstream expects 100 %."""
    ref_path = HASHES / (f"{video.stem}.txt" if variant == "native" else f"{video.stem}-128x128.txt")
    ref = parse_features(ref_path.read_text())
    got = hash_video(video, seconds_per_hash=0, downsample=None if variant == "native" else (128, 128))
    assert len(got.features) == len(ref), "frame count"
    assert [f.frame_number for f in got.features] == [f.frame_number for f in ref]
    assert [f"{f.timestamp:.3f}" for f in got.features] == [f"{f.timestamp:.3f}" for f in ref]
    compared = matched = exact = same_quality = 0
    for a, b in zip(got.features, ref):
        exact += a.pdq_hex == b.pdq_hex
        same_quality += a.quality == b.quality
        if a.quality < 50 or b.quality < 50:
            continue
        compared += 1
        matched += hamming_hex(a.pdq_hex, b.pdq_hex) <= 31
    pct = 100.0 * matched / compared
    video_level = match_vpdq(got.features, ref)
    print(f"\nvPDQ conformance {video.stem} {variant}: byline {matched}/{compared} = {pct:.1f} %, "
          f"video-level query {video_level.query_pct:.1f} % target {video_level.target_pct:.1f} %, "
          f"bit-exact frames {exact}/{len(ref)}, same quality {same_quality}/{len(ref)}")
    assert pct == 100.0
    assert video_level.matched and video_level.query_pct == 100.0


def test_sample_hash_files_parse_and_normalise():
    if not HASHES.is_dir():
        pytest.skip(f"conformance hashes absent: {HASHES}")
    expected = json.loads((VPDQ / "expected.json").read_text())
    for name, entry in expected.items():
        if name.startswith("_"):
            continue
        for variant in ("native", "128x128"):
            if variant not in entry:
                continue
            text = (VPDQ / entry[variant]["hash_file"]).read_text()
            feats = parse_features(text)
            assert len(feats) == entry[variant]["frames"]
            assert sum(f.quality >= 50 for f in feats) == entry[variant]["frames_quality_ge_50"]
            assert feats[0].pdq_hex == entry[variant]["first_frame_pdq"]
            # the C++ text round-trips byte for byte
            assert to_text(feats) == text


# --------------------------------------------------------------------------- generated videos

FPS = 30
W, H = 192, 144


def _frames(seed: int, secs: int, w: int = W, h: int = H):
    """A benign moving picture: one photo-like field per second, panning, with a white square
    crossing it. Each second differs from the others (different fields)."""
    fields = [np.asarray(photo_like(seed * 100 + k, w + 2 * FPS, h)) for k in range(secs)]
    for i in range(secs * FPS):
        k, off = divmod(i, FPS)
        fr = fields[k][:, 2 * off:2 * off + w].copy()
        x = (i * 3) % (w - 20)
        fr[10:30, x:x + 20] = 255
        yield fr


def _encode(path: Path, frames, *, codec: str = "libx264", fmt: str | None = None, size: tuple[int, int] | None = None,
            bit_rate: int | None = None, fps: int = FPS) -> Path:
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        first = True
        for fr in frames:
            if first:
                s.width, s.height = size or (fr.shape[1], fr.shape[0])
                s.pix_fmt = "yuv420p"
                if bit_rate:
                    s.bit_rate = bit_rate
                first = False
            vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
            if size:
                vf = vf.reformat(width=size[0], height=size[1])
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vpdq")
    frames = list(_frames(seed=7, secs=6))
    return {
        "orig": _encode(d / "orig.mp4", frames),
        # same content, other encoder, bitrate and size
        "reenc": _encode(d / "reenc.mp4", frames, codec="mpeg4", size=(128, 96), bit_rate=150_000),
        # 2.0 s to 4.0 s of the original
        "clip": _encode(d / "clip.mp4", frames[2 * FPS:4 * FPS]),
        "other": _encode(d / "other.mp4", _frames(seed=8, secs=6)),
    }


CODECS = [("libx264", "mp4", "mp4"), ("mpeg4", "mp4", "mp4"), ("libvpx", "webm", "webm"), ("ffv1", "matroska", "mkv")]


@pytest.mark.parametrize(("codec", "fmt", "ext"), CODECS, ids=[c[0] for c in CODECS])
def test_codecs_sampling_and_match(tmp_path, videos, codec, fmt, ext):
    if codec not in av.codecs_available:
        pytest.skip(f"the bundled FFmpeg has no {codec} encoder")
    path = _encode(tmp_path / f"v.{ext}", _frames(seed=7, secs=3), codec=codec, fmt=fmt)
    vh = hash_video(path)
    assert isinstance(vh, VideoHash)
    assert (vh.fps, vh.width, vh.height, vh.frames_decoded) == (30.0, W, H, 90)
    assert vh.duration == 3.0 and not vh.truncated and not vh.limited
    # one frame per second: the first of each second, frame numbers 0, 30, 60
    assert [(f.frame_number, f.timestamp) for f in vh.features] == [(0, 0.0), (30, 1.0), (60, 2.0)]
    assert all(f.quality >= 50 for f in vh.features)
    m = match_vpdq(vh.features, hash_video(videos["orig"]).features)
    assert m.matched and m.query_pct == 100.0 and m.target_pct == 50.0


def test_deterministic_and_all_source_kinds(videos):
    path = videos["orig"]
    a = hash_video(path)
    assert hash_video(str(path)).features == a.features
    assert hash_video(path.read_bytes()).features == a.features
    with open(path, "rb") as f:
        assert hash_video(f).features == a.features
    assert len(a.features) == 6


def test_every_frame_and_other_intervals(videos):
    every = hash_video(videos["clip"], seconds_per_hash=0)
    assert len(every.features) == every.frames_decoded == 60
    assert [f.frame_number for f in every.features] == list(range(60))
    assert every.features[1].timestamp == 0.033
    half = hash_video(videos["clip"], seconds_per_hash=0.5)
    assert [f.frame_number for f in half.features] == [0, 15, 30, 45]
    # the sampled frames are exactly the corresponding frames of the every-frame hash
    assert [f for f in every.features if f.frame_number % 15 == 0] == half.features
    small = hash_video(videos["clip"], downsample=(64, 48))
    assert (small.width, small.height) == (64, 48)


def test_reencoded_matches_and_other_does_not(videos):
    orig = hash_video(videos["orig"]).features
    reenc = hash_video(videos["reenc"]).features
    m = match_vpdq(reenc, orig)
    assert m.matched and m.query_pct >= 80 and m.target_pct >= 80
    assert (m.start, m.end) == (0.0, 5.0)
    other = match_vpdq(hash_video(videos["other"]).features, orig)
    assert not other.matched and other.query_pct == 0.0 and other.start is None


def test_clip_from_the_middle(videos):
    full = hash_video(videos["orig"]).features
    clip = hash_video(videos["clip"]).features
    # the clip as the query: all of it is in the known video, at 2 s to 3 s (+1 s sampling)
    m = match_vpdq(clip, full)
    assert m.matched and m.query_pct == 100.0 and m.target_pct == pytest.approx(100 / 3)
    assert (m.start, m.end) == (0.0, 1.0)
    assert (m.target_start, m.target_end) == (2.0, 3.0)
    # the full video as the query against a known clip: the span is where the clip is
    r = match_vpdq(full, clip)
    assert (r.start, r.end) == (2.0, 3.0)
    assert r.query_pct == pytest.approx(100 / 3) and r.target_pct == 100.0
    assert not r.matched  # python-threatexchange's defaults need 80 % of the query
    assert match_vpdq(full, clip, query_threshold=0, target_threshold=80).matched  # vpdq/README.md's example


def test_frames_to_known_pictures(videos):
    every = hash_video(videos["orig"], seconds_per_hash=0.5).features
    # the picture shown at 2.0 s (frame 60) as a known image, and an unrelated one
    frame60 = next(f for i, f in enumerate(_frames(seed=7, secs=6)) if i == 60)
    known = [(11, hash_rgb(frame60).hex), (12, hash_rgb(np.asarray(photo_like(999, W, H))).hex)]
    hits = match_frames_to_pdq(every, known)
    assert [h.id for h in hits] == [11]
    assert hits[0].first == 2.0 and 2.0 <= hits[0].last < 3.0 and hits[0].best_distance <= 31

    from vigie.index import FlatIndex, hex_to_hashes

    index = FlatIndex()
    index.add(np.array([11, 12]), hex_to_hashes([k[1] for k in known]))
    via_index = match_frames_to_pdq(every, index.search)
    assert [(h.id, h.first, h.last, h.frames) for h in via_index] == [(h.id, h.first, h.last, h.frames) for h in hits]


def test_max_seconds_and_keyframes(videos):
    vh = hash_video(videos["orig"], max_seconds=2.5)
    assert vh.limited and [f.timestamp for f in vh.features] == [0.0, 1.0, 2.0] and vh.frames_decoded == 75
    frames = keyframes(videos["orig"], count=4)
    assert len(frames) == 4 and all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    assert len({f.tobytes() for f in frames}) == 4  # spread over the video
    small = keyframes(videos["orig"].read_bytes(), count=2, max_side=96)
    assert [f.shape for f in small] == [(72, 96, 3)] * 2


# --------------------------------------------------------------------------- damaged input


def _code(source, **kw) -> str:
    with pytest.raises(MediaError) as exc:
        hash_video(source, **kw)
    return exc.value.code


def test_damaged_inputs(tmp_path, videos):
    data = videos["orig"].read_bytes()
    assert _code(b"") == "empty"
    assert _code(np.random.default_rng(1).bytes(20_000)) == "corrupt"
    assert _code(b"\0" * 4096 + data[4096:]) == "corrupt"
    assert _code(tmp_path / "missing.mp4") == "unreadable"
    # MP4 with its index at the end, cut: FFmpeg cannot open it at all
    assert _code(data[: len(data) * 6 // 10]) == "truncated"
    # MP4 with its index first (faststart), cut: fewer frames than announced
    fast = tmp_path / "fast.mp4"
    with av.open(str(fast), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        for fr in _frames(seed=7, secs=3):
            for p in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    cut = fast.read_bytes()[: fast.stat().st_size * 6 // 10]
    assert _code(cut) == "truncated"
    partial = hash_video(cut, allow_partial=True)
    assert partial.truncated and 0 < partial.frames_decoded < 90 and partial.features[0].frame_number == 0
    if "libvpx" in av.codecs_available:
        webm = _encode(tmp_path / "v.webm", _frames(seed=7, secs=3), codec="libvpx", fmt="webm").read_bytes()
        assert _code(webm[: len(webm) * 6 // 10]) == "truncated"
    # audio only
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(20):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            f.sample_rate, f.pts = 44100, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    assert _code(buf.getvalue()) == "unsupported"
    with pytest.raises(ValueError):
        hash_video(data, seconds_per_hash=-1)


# --------------------------------------------------------------------------- formats and the rule


F = [VpdqFeature(0, 100, "a" * 64, 0.0), VpdqFeature(30, 80, "0f" * 32, 1.0), VpdqFeature(60, 40, "f" * 64, 2.0)]


def test_serialisation_round_trips():
    text = to_text(F)
    assert text.splitlines()[1] == "30,80," + "0f" * 32 + ",1.000"
    assert parse_features(text) == F
    assert parse_features(to_text(F, sep=";")) == F
    # python-threatexchange / HMA: JSON list of "hex,quality,timestamp"; frame numbers are positions
    pytx = to_pytx_json(F)
    assert json.loads(pytx)[0] == "a" * 64 + ",100,0.000"
    back = parse_features(pytx)
    assert [(f.pdq_hex, f.quality, f.timestamp) for f in back] == [(f.pdq_hex, f.quality, f.timestamp) for f in F]
    assert [f.frame_number for f in back] == [0, 1, 2]
    # python-threatexchange writes timestamps with 3 significant digits ("1.23e+02"): read as floats
    assert parse_features(json.dumps(["a" * 64 + ",90,1.23e+02"]))[0].timestamp == 123.0
    # the older python-threatexchange JSON object keyed by frame number
    old = json.dumps({"30": {"quality": 80, "hash": "0f" * 32, "timestamp": 1.0},
                      "0": {"quality": 100, "hash": "A" * 64, "timestamp": 0.0}})
    assert parse_features(old) == F[:2]


def test_signal_normalise_and_distance():
    canonical = VpdqSignal.normalise("\n" + to_text(F).upper().replace("\n", "\r\n"))
    assert canonical == to_text(F, sep=";") and "\n" not in canonical
    assert VpdqSignal.normalise(to_pytx_json(F)).startswith("0,100," + "a" * 64 + ",0.000;1,80,")
    assert VpdqSignal.is_valid(canonical)
    for bad in ["", "[]", "0,100,abc,0.0", "0,101," + "a" * 64 + ",0", "1,50," + "a" * 64 + ",0;1,50," + "b" * 64
                + ",1", "0,50," + "a" * 64 + ",-1", "0,50," + "a" * 64, '{"x": 1}', "[1, 2]", 42]:
        assert not VpdqSignal.is_valid(bad), bad
        with pytest.raises(InvalidHash):
            VpdqSignal.normalise(bad)
    assert VpdqSignal.distance(canonical, to_pytx_json(F)) == 0
    far = to_text([VpdqFeature(0, 100, "5" * 64, 0.0)])
    assert VpdqSignal.distance(canonical, far) == 100


def test_match_rule_details():
    a, b = "0" * 64, "f" * 64
    near = "0" * 56 + "ffffffff"  # 32 bits from a: just over the threshold
    nearer = "0" * 57 + "fffffff"  # 28 bits
    q = [VpdqFeature(0, 100, a, 0.0), VpdqFeature(1, 100, a, 1.0), VpdqFeature(2, 100, a, 2.0),
         VpdqFeature(3, 100, b, 3.0), VpdqFeature(4, 10, nearer, 4.0)]
    # duplicates count once: 2 unique kept frames (a, b), the low-quality one is dropped
    m = match_vpdq(q, [VpdqFeature(0, 100, nearer, 0.0)])
    assert (m.query_frames, m.target_frames) == (2, 1)
    assert (m.query_pct, m.target_pct) == (50.0, 100.0)
    assert (m.start, m.end) == (0.0, 2.0) and not m.matched
    assert match_vpdq(q, [VpdqFeature(0, 100, near, 0.0)]).query_pct == 0.0
    assert match_vpdq(q, [VpdqFeature(0, 100, near, 0.0)], distance=32).query_pct == 50.0
    assert match_vpdq(q, [VpdqFeature(0, 100, nearer, 0.0)], query_threshold=50).matched
    assert match_vpdq(q, [VpdqFeature(0, 10, a, 0.0)], quality=0).query_pct == pytest.approx(200 / 3)
    empty = match_vpdq(q, [VpdqFeature(0, 10, a, 0.0)])
    assert (empty.query_pct, empty.target_pct, empty.matched) == (0.0, 0.0, False)


def test_pixel_limit(videos):
    assert _code(videos["clip"], max_pixels=100 * 100) == "too_large"


# --------------------------------------------------------------------------- variable frame rate


def test_variable_frame_rate_is_hashed_not_truncated(tmp_path):
    """A valid VFR Matroska file (82 frames shown for 33 ms to 500 ms each) was refused as `truncated`
    (frames / average rate against the container's duration). It is hashed by Meta's count rule; a cut
    copy is still refused. tests/test_parity_vpdq.py compares the frames with Meta's vpdq itself."""
    from vfr_videos import CASES, pts_ms, write_vfr

    ext = {"matroska": "mkv", "mp4": "mp4", "mov": "mov", "webm": "webm"}
    for name, kw in CASES:
        if kw["codec"] not in av.codecs_available:
            continue
        path = write_vfr(tmp_path / f"{name}.{ext[kw['fmt']]}", **kw)
        every = hash_video(path, seconds_per_hash=0)
        n = kw.get("n", 82)
        assert every.frames_decoded == n and len(every.features) == n and not every.truncated, name
        got = hash_video(path)
        mod = max(1, int(got.fps))
        assert [f.frame_number for f in got.features] == list(range(0, n, mod)), name
        times = pts_ms(n, kw.get("seed", 3), kw.get("start_ms", 0))
        assert got.duration >= (times[-1] - times[0]) / 1000, name  # what was shown, not n / fps
        data = path.read_bytes()
        assert _code(data[: len(data) * 6 // 10]) == "truncated", name
        if kw["fmt"] in ("matroska", "webm"):  # a cut MP4 has no index left: nothing opens at all
            part = hash_video(data[: len(data) * 6 // 10], allow_partial=True)
            assert part.truncated and 0 < part.frames_decoded < n
