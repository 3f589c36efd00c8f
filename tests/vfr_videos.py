"""Generated (benign) variable-frame-rate videos: frames shown for unequal times, as phones and screen
recorders write them. The pictures are photo-like colour fields (vigie.demo.photo_like), one per second
of presentation time, panning; only the presentation times (pts) are irregular.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vigie.demo import photo_like

W, H = 192, 144
#: Frame durations drawn from these (milliseconds): 30 fps bursts, slow stretches, long holds.
STEPS_MS = (33, 40, 100, 250, 500)


def pts_ms(n: int, seed: int, start: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    out, t = [], start
    for _ in range(n):
        out.append(t)
        t += int(rng.choice(STEPS_MS))
    return out


def write_vfr(path: Path, *, codec: str = "libx264", fmt: str | None = None, n: int = 82, seed: int = 3,
              start_ms: int = 0, rate: int | None = 30, options: dict | None = None) -> Path:
    """`n` frames at irregular times (1 ms time base). `rate` is the nominal rate given to the encoder
    (None: none, as some recorders write); the container's average rate is whatever the muxer makes of it."""
    times = pts_ms(n, seed, start_ms)
    fields = [np.asarray(photo_like(seed * 100 + k, W + 64, H)) for k in range(times[-1] // 1000 + 2)]
    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        s = c.add_stream(codec, rate=rate) if rate else c.add_stream(codec)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        for i, p in enumerate(times):
            k = (p - start_ms) // 1000
            off = (i % 32) * 2
            vf = av.VideoFrame.from_ndarray(fields[k][:, off:off + W].copy(), format="rgb24")
            vf.pts, vf.time_base = p, Fraction(1, 1000)
            for pk in s.encode(vf):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


#: (name, writer keyword arguments): containers and codecs, nominal rate or none, a start offset.
CASES = [
    ("mkv-h264", dict(codec="libx264", fmt="matroska")),
    ("mkv-h264-norate", dict(codec="libx264", fmt="matroska", rate=None, seed=4)),
    ("mkv-ffv1-offset", dict(codec="ffv1", fmt="matroska", seed=5, start_ms=1500)),
    ("mp4-h264", dict(codec="libx264", fmt="mp4", seed=6)),
    ("mov-mpeg4", dict(codec="mpeg4", fmt="mov", seed=7, n=60)),
    ("webm-vp8", dict(codec="libvpx", fmt="webm", seed=8, n=70)),
]
