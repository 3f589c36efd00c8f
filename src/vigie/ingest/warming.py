"""How a hashing process gets ready before its first file: the hashing code imported and its numba kernels loaded
from their on-disk cache, by hashing a few generated pictures as a scan does.

Called by the forkserver's preload modules (`vigie.ingest.preload`, `vigie.ingest.preload_plain`) and by Dask
workers; importing this module does nothing by itself.
"""

from __future__ import annotations


def warm(variants: bool = True) -> None:
    """Import the worker's code and hash a few generated pictures the way a scan does (decoders, sniffing,
    provenance, every variant's kernels: a large photo, one with a border, a screenshot holding a photo).
    `variants` False (`vigie.ingest.preload_plain`, for `vigie scan --fast`): plain PDQ's kernels only, with
    --fast's reduced JPEG decoding; the variants' twenty-odd kernels are not loaded (their workers never call them)."""
    from PIL import Image

    import vigie.ingest.scan_worker  # noqa: F401 - what the pool's initializer and tasks live in
    from vigie.demo import encode, photo_like
    from vigie.ingest.heap import keep_heap
    from vigie.ingest.members import Item
    from vigie.ingest.process import process_item
    from vigie.settings import Settings

    settings = Settings()
    if not variants:
        from vigie.settings import FAST_SCAN

        settings = settings.model_copy(update=FAST_SCAN)
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
    if variants:
        from vigie.signals.variants import warm_up

        warm_up()  # the kernels past the region gate and the crop hashes, which the pictures above may not reach
    from vigie.ingest.heap import freeze_gc

    freeze_gc()  # the modules and kernels live as long as the process: never walked by the collector again
