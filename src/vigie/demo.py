"""Benign generated pictures for the demo, the tests and the benchmarks.

Vigie's one absolute rule: no real abusive material anywhere. Everything that needs a
picture makes one here: smooth colour fields, shapes and noise, drawn from a seed so
the same call gives the same bytes. Their hashes are planted in demo banks as "known".
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def photo_like(seed: int, width: int = 640, height: int = 480) -> Image.Image:
    """An RGB picture with the structure of a photo (gradients, shapes, texture), different per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        fx, fy = rng.uniform(0.5, 4.0, 2)
        phase = rng.uniform(0, 6.28, 2)
        img[:, :, c] = 128 + 90 * np.sin(xx / width * fx * 6.28 + phase[0]) * np.cos(yy / height * fy * 6.28 + phase[1])
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(4, 12))):
        x0, x1 = sorted(rng.integers(0, width, 2).tolist())
        y0, y1 = sorted(rng.integers(0, height, 2).tolist())
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1 + 1, y1 + 1], fill=colour)
        else:
            draw.rectangle([x0, y0, x1 + 1, y1 + 1], fill=colour)
    noise = rng.normal(0, 6, (height, width, 3))
    arr = np.clip(np.asarray(pil, np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def encode(img: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG" and img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")
    img.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}) | kw)
    return buf.getvalue()


def make_demo_folder(folder: str | Path, count: int = 12, *, seed: int = 0) -> list[Path]:
    """Write `count` benign pictures in several formats; return their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    formats = [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("GIF", "gif"), ("BMP", "bmp"), ("TIFF", "tif")]
    for i in range(count):
        fmt, ext = formats[i % len(formats)]
        img = photo_like(seed + i, 480 + 32 * (i % 5), 360 + 24 * (i % 3))
        p = out / f"demo-{i:03d}.{ext}"
        p.write_bytes(encode(img, fmt))
        paths.append(p)
    return paths


def setup_demo(store, settings, folder: str | Path, *, count: int = 24) -> dict:
    """A demo bank of benign generated pictures planted as "known", and a folder to scan.

    Half the pictures are planted in the bank `demo-known` (PDQ and MD5); the folder
    also gets altered copies of some known pictures (mirrored, re-encoded, shrunk) so
    the demo shows exact matches, near matches and unknown pictures side by side.
    """
    from PIL import ImageOps

    from vigie.banks import service
    from vigie.banks.records import EntryData
    from vigie.banks.verdict import Verdict
    from vigie.errors import Conflict
    from vigie.hashing import hash_file

    folder = Path(folder)
    paths = make_demo_folder(folder, count)
    known = paths[::2]
    altered = []
    for i, p in enumerate(known[:4]):
        img = Image.open(p).convert("RGB")
        variant = [ImageOps.mirror(img), img.resize((img.width // 2, img.height // 2)),
                   img.rotate(90, expand=True), img][i]
        q = folder / f"altered-{i}.jpg"
        q.write_bytes(encode(variant, "JPEG", quality=70))
        altered.append(q)
    try:
        service.create_bank(store, "demo-known", description="Benign generated pictures planted as known "
                            "(demo only)", source="vigie demo",
                            default_verdict=Verdict(legality="national", flags=("series_known",)))
    except Conflict:
        pass
    rows = []
    for p in known:
        rec = hash_file(p, settings)
        rows += [EntryData("pdq", rec.pdq, tags=["demo"], external_id=p.name),
                 EntryData("md5", rec.md5, tags=["demo"], external_id=p.name)]
    report = service.import_entries(store, "demo-known", enumerate(rows, 1), added_by="demo")
    return {"folder": str(folder), "pictures": len(paths) + len(altered), "planted": len(known),
            "added": report.added}


def demo_media_key(data_dir: str | Path) -> str:
    """The demo's media key, kept in the demo folder so that a restart can still show the queue.

    Demo only: a real deployment passes VIGIE_MEDIA_KEY from a secret store and never keeps the key
    beside the data (docs/review.md).
    """
    import base64
    import os

    p = Path(data_dir) / "demo-media.key"
    if not p.exists():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(base64.b64encode(os.urandom(32)).decode())
        p.chmod(0o600)
    return p.read_text().strip()


def setup_demo_app(store, settings, data_dir: str | Path) -> dict:
    """Everything a newcomer needs to see the review app: the demo bank, a scan of demo pictures with
    the unknown ones in the review queue, and demo accounts (passwords returned once, on creation)."""
    from vigie import accounts
    from vigie.errors import Conflict
    from vigie.ingest.scan import run_scan
    from vigie.review.queue import enqueue_scan
    from vigie.store.models import Scan

    data_dir = Path(data_dir)
    info = setup_demo(store, settings, data_dir / "pictures")
    # In this process, which goes on to serve the app: glibc's allocator as a server has it (vigie.ingest.heap);
    # the pictures are the demo's own, generated above, so no worker process stands between them and the app.
    summary = run_scan(store, settings.model_copy(update={"scan_heap_keep_mb": 0, "hash_in_process": True}),
                       [info["folder"]], str(data_dir / "scan-report"), workers=1, case="DEMO", operator="demo")
    from sqlalchemy import select

    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.case_id == "DEMO"))
    queued = enqueue_scan(store, settings, scan_id, by="demo")
    created = {}
    admin_pw = accounts.ensure_admin(store)
    if admin_pw:
        created["admin"] = admin_pw
    for name, role in (("analyst1", "analyst"), ("analyst2", "analyst"), ("supervisor", "supervisor")):
        try:
            _, pw = accounts.create_user(store, name, role, actor="demo")
            created[name] = pw
        except Conflict:
            pass
    return {"scan": summary["counts"]["by_class"], "queued": queued, "accounts": created}


def setup_demo_intake(store, settings, site_url: str, *, known: int = 6) -> dict:
    """The intake flow on a benign demo site (`vigie.demo_site.gallery`, served on 127.0.0.1): its first
    `known` pictures planted in the bank `demo-web`, a demo hosting provider for loopback, and a report of
    the site's first pages, which the worker of `vigie demo serve` then crawls."""
    from vigie.actions import takedown
    from vigie.banks import service
    from vigie.banks.verdict import Verdict
    from vigie.errors import Conflict
    from vigie.hashing import hash_bytes
    from vigie.ingest import reports

    try:
        service.create_bank(store, "demo-web", description="Benign pictures of the demo site planted as known "
                            "(demo only)", source="vigie demo", default_verdict=Verdict(legality="baseline"))
        for i in range(known):
            rec = hash_bytes(encode(photo_like(i, 480, 360), "JPEG", quality=90), settings)
            service.add_entry(store, "demo-web", "pdq", rec.pdq, tags=["demo"], added_by="demo")
    except Conflict:
        pass
    try:
        takedown.add_provider(store, "Demo loopback hosting", "abuse@demo-hosting.invalid",
                              networks=["127.0.0.0/8"], country="FR", by="demo")
    except Conflict:
        pass
    return reports.submit(store, [f"{site_url}/page/0.html", f"{site_url}/page/1.html"], seen=["image"],
                          description="Demo report of a benign local site", channel="staff", by="demo")
