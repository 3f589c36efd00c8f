"""Pictures embedded in PDF documents (image XObjects), each a member: ``doc.pdf!image3.jpg``.

A scanned or exported document holds its pictures as image streams; a scan that treats the
PDF as "not media" misses them. The PDF is read with pypdf from the read-only file object;
the image XObjects of every page's resources (and of the form XObjects they draw, followed
once each) are numbered from 1 in the order they are first drawn (pages in order, resource
names sorted within a page); an image drawn on several pages is listed once.

What a member holds:

- a JPEG stream (``/DCTDecode``, the usual case): its bytes as stored, which are the JPEG file
  that was put into the document, so its MD5/SHA-256 can match a bank exactly: ``image1.jpg``;
- a JPEG 2000 stream (``/JPXDecode``): its bytes as stored, ``image2.jp2``;
- any other image (Flate, LZW, run-length, CCITT, JBIG2…): decoded by pypdf to pixels and
  written as a PNG (PDQ matches it; its digests are those of that PNG): ``image3.png``.

Limits: an image whose declared ``/Width`` x ``/Height`` is over `max_pixels`, or whose decoded
size would pass `max_file_bytes`, is listed with ``too_large`` and not decoded; decoded bytes
count towards the source's `archive_max_total_bytes`. Inline images (``BI … EI`` in a content
stream, tiny by design) are not listed. A PDF encrypted with a user password is reported
``encrypted`` (one with an empty user password, the common "owner-only" case, is read).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import BinaryIO

from vigie.errors import ErrorRecord
from vigie.ingest.members import SEP, Context, Item, LimitExceeded

_log = logging.getLogger(__name__)
#: Bytes a PDF must start with (after optional whitespace) to be opened as one.
MAGIC = b"%PDF-"
_MAX_FORMS = 10_000


def is_pdf(head: bytes) -> bool:
    return head[:1024].lstrip()[:5] == MAGIC


def _filters(obj) -> list[str]:
    f = obj.get("/Filter")
    if f is None:
        return []
    return [str(x) for x in f] if isinstance(f, list) else [str(f)]


def _images(reader) -> Iterator[tuple[int, object, object]]:
    """(page number, reference key, image object) for every distinct image XObject, in drawing order."""
    seen: set = set()
    forms: set = set()
    for pno, page in enumerate(reader.pages, 1):
        stack = [page.get("/Resources")]
        while stack:
            res = stack.pop(0)
            res = res.get_object() if res is not None else None
            if not hasattr(res, "get"):
                continue
            xo = res.get("/XObject")
            xo = xo.get_object() if xo is not None else None
            if not hasattr(xo, "keys"):
                continue
            for name in sorted(xo.keys()):
                ref = xo.raw_get(name)
                obj = ref.get_object()
                if not hasattr(obj, "get"):
                    continue
                key = (ref.idnum, ref.generation) if hasattr(ref, "idnum") else ("direct", id(obj))
                sub = obj.get("/Subtype")
                if sub == "/Image" and key not in seen:
                    seen.add(key)
                    yield pno, key, obj
                elif sub == "/Form" and key not in forms and len(forms) < _MAX_FORMS:
                    forms.add(key)
                    stack.append(obj.get("/Resources"))


def _ext(obj) -> str:
    """What the member will hold, from the stream's last filter (known before anything is decoded)."""
    last = (_filters(obj) or [""])[-1]
    return {"/DCTDecode": "jpg", "/DCT": "jpg", "/JPXDecode": "jp2"}.get(last, "png")


def _image_bytes(obj, ctx: Context) -> bytes:
    """The bytes of one image XObject (raw JPEG/JPEG 2000, else a PNG of its pixels)."""
    s = ctx.settings
    w, h = int(obj.get("/Width", 0) or 0), int(obj.get("/Height", 0) or 0)
    if w * h > s.max_pixels:
        raise LimitExceeded("too_large", f"{w}x{h} pixels declared, over max_pixels ({s.max_pixels}): not decoded")
    if _ext(obj) != "png":
        data = obj.get_data()  # JPEG and JPEG 2000 pass through pypdf undecoded: the picture file itself
        if len(data) > s.max_file_bytes:
            raise LimitExceeded("too_large", f"{len(data)} bytes, over max_file_bytes ({s.max_file_bytes})")
        return bytes(data)
    if w * h * 4 > s.max_file_bytes:
        raise LimitExceeded("too_large", f"{w}x{h} pixels decode past max_file_bytes ({s.max_file_bytes})")
    img = obj.decode_as_image()
    if img is None:
        raise ValueError("pypdf cannot decode this image")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def members(item: Item, fobj: BinaryIO, size: int, kind: str, depth: int, ctx: Context) -> Iterator[Item]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    item.meta["format"] = "pdf"
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # damaged documents warn at length; errors say enough
    try:
        reader = PdfReader(fobj, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            item.meta["encrypted"] = True
            item.error = ErrorRecord("encrypted", "PDF encrypted with a user password: its pictures cannot be read")
            yield item
            return
        found = list(_images(reader))
    except (PdfReadError, OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        item.error = ErrorRecord("corrupt_container", f"PDF unreadable: {str(exc).strip()[:300]}")
        yield item
        return
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged files; the scan goes on
        item.error = ErrorRecord("corrupt_container", f"PDF unreadable ({type(exc).__name__}): {str(exc)[:300]}")
        yield item
        return
    item.meta["images"] = len(found)
    yield item
    for n, (pno, key, obj) in enumerate(found, 1):
        meta = {"page": pno, "embedded": True}
        if key[0] != "direct":
            meta["pdf_object"] = key[0]
        loc = f"{item.location}{SEP}image{n}.{_ext(obj)}"
        if not ctx.wants(loc):
            continue  # re-opening another location: this image is not decoded
        try:
            data = _image_bytes(obj, ctx)
            ctx.count(len(data))
        except LimitExceeded as exc:
            yield Item(loc, deleted=item.deleted, meta=meta, error=ErrorRecord(exc.code, exc.message))
            if exc.stop:
                return
            continue
        except Exception as exc:  # noqa: BLE001 - one damaged image; the next ones are read
            yield Item(loc, deleted=item.deleted, meta=meta,
                       error=ErrorRecord("corrupt", f"image unreadable: {type(exc).__name__}: {str(exc)[:200]}"))
            continue
        yield from ctx.expand(Item(loc, size=len(data), data=data, deleted=item.deleted, meta=meta),
                              depth + 1)
