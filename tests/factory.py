"""Fixture factory: benign test media made on the fly (never committed).

Every picture is generated: colour fields, shapes and noise from vigie.demo, or
synthetic arrays, saved in whatever format and mode a test needs.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from vigie.demo import photo_like


def picture(seed: int = 1, w: int = 320, h: int = 240) -> Image.Image:
    return photo_like(seed, w, h)


def save(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write(folder: Path, name: str, data: bytes) -> Path:
    p = Path(folder) / name
    p.write_bytes(data)
    return p


def png_16bit_grey(img8: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG whose samples are the 8-bit ones times 257 (as any 8->16 bit converter does)."""
    a16 = img8.astype(np.uint16) * 257
    return save(Image.fromarray(a16), "PNG")


def png_rgb16(rgb8: np.ndarray) -> bytes:
    """A 48-bit RGB PNG, written by hand since Pillow cannot save one."""
    h, w, _ = rgb8.shape
    a16 = (rgb8.astype(">u2") * 257)
    raw = b"".join(b"\x00" + a16[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_header_only(w: int, h: int) -> bytes:
    """A PNG that claims a huge size (decompression-bomb shape) with almost no data."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + idat + chunk(b"IEND", b"")


def gif_huge_screen(w: int = 65535, h: int = 65535) -> bytes:
    """A GIF whose logical screen is enormous and whose only frame is 1x1."""
    hdr = b"GIF89a" + struct.pack("<HH", w, h) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    img = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00" + b"\x02\x02\x44\x01\x00"
    return hdr + img + b"\x3b"


def animated_gif(seed: int = 3) -> bytes:
    frames = [picture(seed + i, 120, 90).convert("P") for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def corrupt_png_crc(data: bytes) -> bytes:
    """Flip a byte inside the first IDAT chunk's data so its CRC no longer matches."""
    i = data.index(b"IDAT") + 10
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]


def video(path: Path, stills: list[np.ndarray], *, seconds_each: float = 1.0, fps: int = 10,
          codec: str = "libx264", bit_rate: int | None = None, size: tuple[int, int] | None = None) -> Path:
    """An MP4 showing each benign still for `seconds_each`, with a small moving square so frames differ."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        h, w = stills[0].shape[:2]
        s.width, s.height = size or (w, h)
        s.pix_fmt = "yuv420p"
        if bit_rate:
            s.bit_rate = bit_rate
        i = 0
        for still in stills:
            for _ in range(int(seconds_each * fps)):
                fr = still.copy()
                x = (i * 5) % max(1, w - 12)
                fr[4:12, x:x + 8] = 255
                vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
                if size:
                    vf = vf.reformat(width=size[0], height=size[1])
                for p in s.encode(vf):
                    c.mux(p)
                i += 1
        for p in s.encode():
            c.mux(p)
    return path
