"""Imported once by the forkserver that starts a scan's hashing workers, so that each worker forks ready.

A worker started from a bare forkserver imports the hashing code (PIL, numpy, numba, SQLAlchemy: about
two seconds) and loads every numba kernel from its on-disk cache on first use (about a second more, and
a full JIT compile of tens of seconds, per worker, after the code changed). Done here, in the forkserver,
it is paid once per scan, and the workers inherit the loaded modules and compiled kernels by fork.

Nothing here may raise: the forkserver tolerates only ImportError from a preloaded module.
"""

from __future__ import annotations


def warm() -> None:
    """Import the worker's code and hash a few generated pictures the way a scan does (decoders, sniffing,
    provenance, every variant's kernels: a large photo, one with a border, a screenshot holding a photo)."""
    from PIL import Image

    import vigie.ingest.scan_worker  # noqa: F401 - what the pool's initializer and tasks live in
    from vigie.demo import encode, photo_like
    from vigie.ingest.heap import keep_heap
    from vigie.ingest.members import Item
    from vigie.ingest.process import process_item
    from vigie.settings import Settings

    settings = Settings()
    keep_heap(settings.scan_heap_keep_mb)  # forked workers inherit it (vigie.ingest.heap)
    photo = photo_like(11, 320, 240).resize((1280, 960))  # generated small: this runs before any worker starts
    framed = Image.new("RGB", (720, 560), (255, 255, 255))
    framed.paste(photo_like(12, 300, 220).resize((600, 440)), (60, 60))
    shot = Image.new("RGB", (800, 600), (236, 236, 236))
    shot.paste(Image.new("RGB", (800, 48), (40, 60, 90)), (0, 0))
    shot.paste(photo_like(13, 420, 300), (200, 160))
    for n, (img, fmt) in enumerate(((photo, "JPEG"), (framed, "PNG"), (shot, "JPEG"))):
        data = encode(img, fmt, **({"compress_level": 1} if fmt == "PNG" else {}))  # what is decoded matters
        process_item(Item(f"<warm-{n}>", size=len(data), data=data), settings)
    from vigie.signals.variants import warm_up

    warm_up()  # the kernels past the region gate and the crop hashes, which the pictures above may not reach


try:
    warm()
except Exception:  # noqa: BLE001 - a worker that was not warmed still works: it loads what it needs
    pass
