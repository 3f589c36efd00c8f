"""vPDQ parity with Meta's `vpdq` package on generated variable-frame-rate videos.

Meta's vpdq (the pip package, C++ over FFmpeg) is installed in a separate venv
(tests/parity_venv.py; it needs FFmpeg's development headers to build, and the test is skipped
with pip's reason where it does not build). On each VFR video, in Matroska, MP4, MOV and WebM,
with and without a nominal rate, with a start offset: Vigie hashes it (never `truncated`), picks
the same frames (frame numbers, every frame and one per `seconds_per_hash` interval by Meta's
count rule), gives them the same timestamps, and each frame's hash is within Meta's match
distance of vpdq's (the decoders and scalers are different FFmpeg builds, so not every bit).
"""

from __future__ import annotations

import pytest
from parity_venv import parity_python, run_json
from vfr_videos import CASES, write_vfr

from vigie.signals.base import hamming_hex
from vigie.signals.vpdq import hash_video, match_vpdq, parse_features

EXT = {"matroska": "mkv", "mp4": "mp4", "mov": "mov", "webm": "webm"}

VPDQ_SCRIPT = """
import json, sys
import vpdq
out = {}
for name, path, sph in json.load(sys.stdin):
    feats = vpdq.computeHash(path, seconds_per_hash=sph)
    out[f"{name}@{sph}"] = [f"{f.frame_number},{f.quality},{f.hex},{f.timestamp:.3f}" for f in feats]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def vpdq_python():
    return parity_python("vpdq", "vpdq")


@pytest.fixture(scope="module")
def videos(tmp_path_factory, vpdq_python):
    import av

    d = tmp_path_factory.mktemp("vfr")
    paths = {}
    for name, kw in CASES:
        if kw["codec"] not in av.codecs_available:
            continue
        paths[name] = write_vfr(d / f"{name}.{EXT[kw['fmt']]}", **kw)
    theirs = run_json(vpdq_python, VPDQ_SCRIPT, [[n, str(p), s] for n, p in paths.items() for s in (0, 1, 2)])
    return paths, {k: parse_features("\n".join(v)) for k, v in theirs.items()}


def test_every_case_generated(videos):
    paths, _ = videos
    assert {"mkv-h264", "mkv-h264-norate", "mkv-ffv1-offset", "mp4-h264", "mov-mpeg4"} <= set(paths)


@pytest.mark.parametrize("seconds_per_hash", [0, 1, 2])
@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_vfr_hashed_as_meta_vpdq(videos, name, seconds_per_hash):
    paths, theirs = videos
    if name not in paths:
        pytest.skip(f"codec of {name} not in this FFmpeg")
    ref = theirs[f"{name}@{seconds_per_hash}"]
    got = hash_video(paths[name], seconds_per_hash=seconds_per_hash)
    assert not got.truncated
    assert [f.frame_number for f in got.features] == [f.frame_number for f in ref]
    assert [f"{f.timestamp:.3f}" for f in got.features] == [f"{f.timestamp:.3f}" for f in ref]
    if seconds_per_hash == 0:
        assert got.frames_decoded == len(ref)  # every frame (82 in the case)
    exact = 0
    for a, b in zip(got.features, ref):
        exact += a.pdq_hex == b.pdq_hex
        assert hamming_hex(a.pdq_hex, b.pdq_hex) <= 31, (a.frame_number, a.quality, b.quality)
    m = match_vpdq(got.features, ref)
    assert m.matched and m.query_pct == 100.0 and m.target_pct == 100.0
    print(f"\n{name} every {seconds_per_hash} s: {len(ref)} frames as vpdq, bit-exact {exact}/{len(ref)}")
