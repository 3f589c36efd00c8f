"""How a hashing process gets ready before its first file: the hashing code imported and its numba kernels loaded
from their on-disk cache, by hashing a few generated pictures as a scan does.

Called by the forkserver's preload modules (`vigie.ingest.preload`, `vigie.ingest.preload_plain`) and by Dask
workers; importing this module does nothing by itself.
"""

from __future__ import annotations

#: The kinds of scan this process was warmed for (True: with the query variants, False: `--fast`'s); a process
#: forked from a warmed forkserver inherits it.
WARMED: set[bool] = set()


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
    WARMED.add(variants)


def ensure_warm(variants: bool) -> None:
    """`warm(variants)` unless this process (or the forkserver it forked from) was warmed so already.

    Called by a scan's pool workers before their first file. A process's forkserver is started once, with the
    preload its first user asked for: after a `--fast` scan, a `vigie hash` batch (no preload) or in a server,
    a scan's workers fork without the kernels it needs. Each then loaded them during its first file, inside that
    file's time limit: on a slow, loaded machine the first picture was reported `timeout` (a worker was still
    in LLVM when the alarm came, seen on a 2-core Zen 3 under the test suite). Loaded here, they count against
    no file. Nothing may raise: a worker that was not warmed still works."""
    if variants in WARMED:
        return
    try:
        warm(variants)
    except Exception:  # noqa: BLE001 - it loads what it needs with its first file instead
        pass
