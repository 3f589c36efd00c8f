"""Provenance signals: what a file says about itself.

Reads, without decoding pixels:

* EXIF: camera make and model, when the picture was taken, the software that wrote it,
  and whether GPS coordinates are present (only flagged, never stored);
* C2PA manifests (Content Credentials, through c2pa-python), with no network access;
* the IPTC DigitalSourceType in XMP (``Iptc4xmpExt:DigitalSourceType``);
* the text that image generators leave in PNG chunks (Stable Diffusion web UIs'
  ``parameters``, ComfyUI's ``prompt``/``workflow``, InvokeAI, NovelAI, ...) and in EXIF
  UserComment.

`ai_likely` is set when any of this says the picture was made by a generator; every
reason is listed in `evidence`. Metadata is easy to strip and to forge: it is
evidence, not proof, either way (docs/provenance.md).

`read_provenance` never raises: what cannot be read goes to `errors`. Work is bounded
(text caps, chunk and packet counts, bounded decompression) so hostile files stay cheap.
"""

from __future__ import annotations

import io
import json
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vigie.media.sniff import SNIFF_BYTES, sniff

#: Longest excerpt of a text field kept in the result (prompts, workflows, comments).
EXCERPT_CHARS = 240
#: Most characters of one text field that are examined.
MAX_TEXT_CHARS = 256 * 1024
#: Most bytes of one XMP packet that are examined.
MAX_XMP_BYTES = 2 * 1024 * 1024
#: Most XMP packets looked for by the raw byte scan.
MAX_XMP_PACKETS = 8
#: Most PNG chunks walked, and most decompressed bytes from one zTXt/iTXt chunk.
MAX_PNG_CHUNKS = 20_000
MAX_PNG_INFLATE = 512 * 1024
#: Most C2PA actions and validation codes kept in the summary.
MAX_C2PA_ITEMS = 20
#: Most bytes scanned for a raw EXIF block when the container could not be opened.
RAW_EXIF_SCAN = 256 * 1024

#: IPTC digital source types that mean the picture was made (wholly or partly) by a generator.
AI_SOURCE_TYPES = frozenset({
    "trainedAlgorithmicMedia",
    "compositeSynthetic",
    "algorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia",
})

#: Software names that, in EXIF Software, XMP CreatorTool or a PNG text field, name an image generator.
KNOWN_GENERATORS: tuple[tuple[str, str], ...] = (
    (r"stable[\s_-]?diffusion", "Stable Diffusion"),
    (r"\bsdxl\b", "Stable Diffusion"),
    (r"novel\s?ai", "NovelAI"),
    (r"midjourney", "Midjourney"),
    (r"dall[\s·._-]?e", "DALL-E"),
    (r"comfy\s?ui", "ComfyUI"),
    (r"invoke\s?ai", "InvokeAI"),
    (r"automatic1111|stable-diffusion-webui|\bsd\.next\b", "Stable Diffusion web UI"),
    (r"\bfooocus\b", "Fooocus"),
    (r"\bfirefly\b", "Adobe Firefly"),
    (r"leonardo\.?ai", "Leonardo.Ai"),
    (r"\bideogram\b", "Ideogram"),
    (r"\bimagen\b", "Google Imagen"),
    (r"draw things", "Draw Things"),
    (r"diffusionbee", "DiffusionBee"),
    (r"easy diffusion", "Easy Diffusion"),
    (r"swarmui", "SwarmUI"),
    (r"\bflux\.1\b", "FLUX.1"),
)
_GENERATOR_RES = tuple((re.compile(p, re.I), name) for p, name in KNOWN_GENERATORS)

# The "parameters" text of AUTOMATIC1111-style web UIs: "...\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1".
_A1111_RE = re.compile(r"(?:^|\n|,\s)Steps:\s*\d{1,6},[^\n]{0,400}?\b(?:Sampler|CFG scale|Seed):")
_XMP_START = (b"<x:xmpmeta", b"<?xpacket begin")
_XMP_END = (b"</x:xmpmeta>", b"<?xpacket end")

_TAG_MAKE, _TAG_MODEL, _TAG_SOFTWARE, _TAG_DESCRIPTION = 0x010F, 0x0110, 0x0131, 0x010E
_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825
_TAG_DT_ORIGINAL, _TAG_DT_DIGITIZED = 0x9003, 0x9004
_TAG_OFFSET_ORIGINAL, _TAG_OFFSET_DIGITIZED = 0x9011, 0x9012
_TAG_USER_COMMENT = 0x9286
_GPS_COORDINATE_TAGS = (1, 2, 3, 4)  # LatitudeRef, Latitude, LongitudeRef, Longitude

_PILLOW_FORMATS = {
    "image/jpeg": ["JPEG", "MPO"],
    "image/webp": ["WEBP"],
    "image/tiff": ["TIFF"],
    "image/gif": ["GIF"],
    "image/heif": ["HEIF"],
    "image/avif": ["AVIF", "HEIF"],
}


@dataclass
class Provenance:
    """What a file says about where it comes from. Every field is a claim made by the file."""

    camera_make: str | None = None
    camera_model: str | None = None
    taken_at: str | None = None
    software: str | None = None
    gps: bool = False
    c2pa: dict | None = None
    iptc_source_type: str | None = None
    generator: dict | None = None
    thumbnail_of: dict | None = None  # a freedesktop.org thumbnail (Linux desktops): the file it was made of
    ai_likely: bool = False
    evidence: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        """The fields that carry information; `ai_likely` and `gps` always."""
        out: dict[str, Any] = {}
        for name in ("camera_make", "camera_model", "taken_at", "software"):
            value = getattr(self, name)
            if value:
                out[name] = value
        out["gps"] = self.gps
        for name in ("c2pa", "iptc_source_type", "generator", "thumbnail_of"):
            value = getattr(self, name)
            if value:
                out[name] = value
        out["ai_likely"] = self.ai_likely
        if self.evidence:
            out["evidence"] = list(self.evidence)
        if self.errors:
            out["errors"] = list(self.errors)
        return out

    # -- internal helpers -------------------------------------------------------------
    def _add_evidence(self, reason: str) -> None:
        self.ai_likely = True
        if reason not in self.evidence:
            self.evidence.append(reason)

    def _add_error(self, what: str, exc: BaseException | None = None) -> None:
        msg = what if exc is None else f"{what}: {_short(str(exc) or type(exc).__name__, 160)}"
        if msg not in self.errors and len(self.errors) < 20:
            self.errors.append(msg)

    def _add_generator_field(self, source: str, text: str, tool: str | None) -> None:
        gen = self.generator if self.generator is not None else {"tools": [], "fields": {}}
        self.generator = gen
        if tool and tool not in gen["tools"]:
            gen["tools"].append(tool)
        if source not in gen["fields"]:
            gen["fields"][source] = _short(text, EXCERPT_CHARS)


def read_provenance(data: bytes, media_type: str | None = None) -> Provenance:
    """Read the provenance signals of a file's bytes. Never raises; see the module docstring."""
    prov = Provenance()
    try:
        _read(prov, bytes(data) if not isinstance(data, bytes) else data, media_type)
    except Exception as exc:  # noqa: BLE001 - a reader must never crash the scan
        prov._add_error("provenance reading failed", exc)
    return prov


# ------------------------------------------------------------------------------------------
# Orchestration
# ------------------------------------------------------------------------------------------

def _read(prov: Provenance, data: bytes, media_type: str | None) -> None:
    if not data:
        return
    detected = sniff(data[:SNIFF_BYTES])
    mtype = detected or (media_type or "").lower() or None

    exif_blobs: list[bytes] = []
    xmp_packets: list[bytes] = []
    texts: dict[str, str] = {}
    exif_obj = None

    scan = data  # where XMP and C2PA are looked for in the raw bytes
    if mtype == "image/png":
        _walk_png(prov, data, texts, exif_blobs, xmp_packets)
    elif mtype in _PILLOW_FORMATS:
        exif_obj, header_end = _read_with_pillow(prov, data, mtype, texts, xmp_packets)
        if header_end:
            scan = data[:header_end]

    if exif_obj is None and not exif_blobs and mtype not in (None, "image/png") and mtype.startswith("image/"):
        raw = _raw_exif(data)
        if raw is not None:
            exif_blobs.append(raw)
    if exif_obj is None:
        for blob in exif_blobs:
            exif_obj = _load_exif(prov, blob)
            if exif_obj is not None:
                break
    if exif_obj is not None:
        _apply_exif(prov, exif_obj)

    if not xmp_packets:
        xmp_packets = _raw_xmp_packets(scan)
    for packet in xmp_packets:
        _apply_xmp(prov, packet)

    _apply_texts(prov, texts)
    _apply_thumbnail(prov, texts)
    _apply_c2pa(prov, data, mtype, scan)


#: The keys of a freedesktop.org thumbnail (the Thumbnail Managing Standard: ``~/.cache/thumbnails/normal/
#: <md5 of the URI>.png`` on Linux desktops, ``~/.thumbnails`` before), kept when the picture is deleted.
THUMBNAIL_KEYS = {"png:Thumb::URI": "uri", "png:Thumb::MTime": "mtime", "png:Thumb::Size": "size",
                  "png:Thumb::Mimetype": "mimetype", "png:Software": "software"}


def _apply_thumbnail(prov: Provenance, texts: dict[str, str]) -> None:
    """A PNG holding ``Thumb::URI`` is a desktop's thumbnail of the file at that URI: the link between the
    thumbnail and its original, which may be long gone (the standard requires ``Thumb::URI`` and
    ``Thumb::MTime``; the original's modification time, seconds since 1970)."""
    uri = texts.get("png:Thumb::URI")
    if not uri:
        return
    got = {name: _short(texts[key], 2048) for key, name in THUMBNAIL_KEYS.items() if texts.get(key)}
    for name in ("mtime", "size"):
        try:
            got[name] = int(got[name])
        except (KeyError, ValueError):
            got.pop(name, None)
    prov.thumbnail_of = got


# ------------------------------------------------------------------------------------------
# Containers
# ------------------------------------------------------------------------------------------

def _read_with_pillow(prov: Provenance, data: bytes, mtype: str, texts: dict[str, str],
                      xmp_packets: list[bytes]):
    """Open lazily (no pixels decoded); return the Exif object and, for a JPEG, where its entropy-coded data
    starts (its metadata segments, APP1 XMP and APP11 C2PA included, all come before: the raw scans for XMP and
    C2PA need not read the megabytes of a camera photo's pixels), or None; collect XMP and text fields."""
    from PIL import Image

    if mtype in ("image/heif", "image/avif"):
        from vigie.media.decode import _enable_heif

        _enable_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[mtype])
    except Exception as exc:  # noqa: BLE001
        prov._add_error("container could not be opened; metadata read from raw bytes", exc)
        return None, None
    header_end = None
    if img.format == "JPEG" and img.fp is not None:  # Pillow read the segments up to the first scan's header
        try:
            end = img.fp.tell()
            header_end = end if 0 < end <= len(data) and data.rfind(b"\xff\xda", 0, end) >= 0 else None
        except (OSError, ValueError):
            header_end = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            info = img.info or {}
            xmp = info.get("xmp")
            if not xmp and img.format == "TIFF":
                xmp = getattr(img, "tag_v2", {}).get(700)
            if isinstance(xmp, str):
                xmp = xmp.encode("utf-8", "replace")
            if isinstance(xmp, (bytes, bytearray)) and xmp:
                xmp_packets.append(bytes(xmp[:MAX_XMP_BYTES]))
            for key in ("comment", "Comment"):
                value = info.get(key)
                if isinstance(value, (bytes, str)) and value:
                    texts[f"{img.format.lower()}:comment"] = _text(value)
            try:
                return img.getexif(), header_end
            except Exception as exc:  # noqa: BLE001
                prov._add_error("EXIF unreadable", exc)
                return None, header_end
    finally:
        img.close()


def _walk_png(prov: Provenance, data: bytes, texts: dict[str, str], exif_blobs: list[bytes],
              xmp_packets: list[bytes]) -> None:
    """Walk PNG chunks (all of them, after IDAT too) without inflating any pixel data."""
    pos, n = 8, 0
    size = len(data)
    while pos + 8 <= size and n < MAX_PNG_CHUNKS:
        n += 1
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body_start = pos + 8
        body_end = body_start + length
        if body_end > size:
            prov._add_error(f"PNG truncated inside a {ctype.decode('latin-1', 'replace')!r} chunk")
            body_end = size
            if ctype not in (b"tEXt", b"iTXt", b"zTXt"):
                break
        body = data[body_start:body_end]
        try:
            if ctype == b"tEXt":
                key, _, value = body.partition(b"\x00")
                _put_text(texts, key, value.decode("latin-1"))
            elif ctype == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                _put_text(texts, key, _inflate(rest[1:]).decode("latin-1"))
            elif ctype == b"iTXt":
                key, _, rest = body.partition(b"\x00")
                compressed = rest[:1] == b"\x01"
                _lang, _, rest = rest[2:].partition(b"\x00")
                _translated, _, value = rest.partition(b"\x00")
                raw = _inflate(value) if compressed else value[: MAX_XMP_BYTES]
                if key == b"XML:com.adobe.xmp":
                    xmp_packets.append(raw[:MAX_XMP_BYTES])
                else:
                    _put_text(texts, key, raw.decode("utf-8", "replace"))
            elif ctype == b"eXIf":
                exif_blobs.append(body)
        except Exception as exc:  # noqa: BLE001
            prov._add_error(f"PNG {ctype.decode('latin-1', 'replace')!r} chunk unreadable", exc)
        if ctype == b"IEND" or body_end >= size:
            break
        pos = body_end + 4  # CRC


def _put_text(texts: dict[str, str], key: bytes, value: str) -> None:
    name = "png:" + key.decode("latin-1", "replace")[:79]
    if name not in texts and len(texts) < 256:
        texts[name] = value[:MAX_TEXT_CHARS]


def _inflate(blob: bytes) -> bytes:
    d = zlib.decompressobj()
    return d.decompress(blob, MAX_PNG_INFLATE)


def _raw_exif(data: bytes) -> bytes | None:
    """An EXIF block found in the first bytes ("Exif\\0\\0" + TIFF header), for containers Pillow could not open."""
    i = data.find(b"Exif\x00\x00", 0, RAW_EXIF_SCAN)
    if i < 0:
        return None
    return data[i:i + 65536]


def _raw_xmp_packets(data: bytes) -> list[bytes]:
    """XMP packets found anywhere in the bytes (GIF, video and anything without a structured place)."""
    packets: list[bytes] = []
    pos = 0
    while len(packets) < MAX_XMP_PACKETS:
        starts = [i for i in (data.find(m, pos) for m in _XMP_START) if i >= 0]
        if not starts:
            break
        start = min(starts)
        window = data[start:start + MAX_XMP_BYTES]
        ends = [i for i in (window.find(m) for m in _XMP_END) if i >= 0]
        end = min(ends) + 16 if ends else len(window)
        packets.append(window[:end])
        pos = start + max(end, 1)
    return packets


# ------------------------------------------------------------------------------------------
# EXIF
# ------------------------------------------------------------------------------------------

def _load_exif(prov: Provenance, blob: bytes):
    from PIL import Image

    try:
        exif = Image.Exif()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif.load(blob)
        return exif
    except Exception as exc:  # noqa: BLE001
        prov._add_error("EXIF unreadable", exc)
        return None


def _apply_exif(prov: Provenance, exif) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            prov.camera_make = _clean(exif.get(_TAG_MAKE))
            prov.camera_model = _clean(exif.get(_TAG_MODEL))
            prov.software = _clean(exif.get(_TAG_SOFTWARE))
            description = _clean(exif.get(_TAG_DESCRIPTION), MAX_TEXT_CHARS)
        except Exception as exc:  # noqa: BLE001
            prov._add_error("EXIF main directory unreadable", exc)
            return
        sub: dict = {}
        try:
            sub = dict(exif.get_ifd(_IFD_EXIF))
        except Exception as exc:  # noqa: BLE001
            prov._add_error("EXIF sub-directory unreadable", exc)
        try:
            gps = exif.get_ifd(_IFD_GPS)
            prov.gps = any(t in gps for t in _GPS_COORDINATE_TAGS)
        except Exception as exc:  # noqa: BLE001
            prov._add_error("EXIF GPS directory unreadable", exc)

    for dt_tag, off_tag, label in ((_TAG_DT_ORIGINAL, _TAG_OFFSET_ORIGINAL, "DateTimeOriginal"),
                                   (_TAG_DT_DIGITIZED, _TAG_OFFSET_DIGITIZED, "DateTimeDigitized")):
        raw = _clean(sub.get(dt_tag))
        if not raw:
            continue
        iso = _exif_datetime(raw, _clean(sub.get(off_tag)))
        if iso:
            prov.taken_at = iso
            break
        prov._add_error(f"EXIF {label} is not a date: {_short(raw, 40)!r}")

    if prov.software:
        tool = _known_generator(prov.software)
        if tool:
            prov._add_evidence(f"EXIF Software names an image generator: {_short(prov.software, 80)!r} ({tool})")

    comment = _user_comment(sub.get(_TAG_USER_COMMENT))
    for source, text in (("exif:UserComment", comment), ("exif:ImageDescription", description)):
        if text and _A1111_RE.search(text[:MAX_TEXT_CHARS]):
            prov._add_generator_field(source, text, "Stable Diffusion web UI")
            prov._add_evidence(f"{source} holds Stable Diffusion generation parameters")


def _exif_datetime(raw: str, offset: str | None) -> str | None:
    try:
        dt = datetime.strptime(raw[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        try:
            dt = datetime.fromisoformat(raw[:19])
        except ValueError:
            return None
    iso = dt.isoformat()
    if offset and re.fullmatch(r"[+-]\d\d:\d\d", offset.strip()):
        iso += offset.strip()
    elif offset and offset.strip().upper() == "Z":
        iso += "+00:00"
    return iso


def _user_comment(value) -> str | None:
    """EXIF UserComment: 8 bytes of character code, then the text (A1111 writes UNICODE, UTF-16)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value[:MAX_TEXT_CHARS] or None
    if not isinstance(value, (bytes, bytearray)):
        return None
    value = bytes(value[: 8 + 2 * MAX_TEXT_CHARS])
    code, body = value[:8], value[8:]
    if code.startswith(b"UNICODE"):
        # Big- or little-endian UTF-16 without BOM; pick the one that gives ASCII-looking text.
        be, le = body.decode("utf-16-be", "replace"), body.decode("utf-16-le", "replace")
        text = be if sum(c.isascii() for c in be) >= sum(c.isascii() for c in le) else le
    elif code.startswith(b"ASCII") or code == b"\x00" * 8:
        text = body.decode("latin-1")
    else:
        text = value.decode("utf-8", "replace")
    return text.strip("\x00 ") or None


# ------------------------------------------------------------------------------------------
# XMP
# ------------------------------------------------------------------------------------------

# Attribute form (prefix:DigitalSourceType="...") and element forms (<prefix:DigitalSourceType>...</...>
# or rdf:resource="..."). A regex over the packet: no XML parser, so no entity expansion.
_DST_ATTR_RE = re.compile(rb"(?<=[\w.-]):DigitalSourceType\s{0,16}=\s{0,16}[\"']([^\"'<>]{1,512})[\"']")
_DST_ELEM_RE = re.compile(
    rb"<([\w.-]{1,64}:DigitalSourceType)\b([^>]{0,1024})>(?:([^<]{1,512})</\1>)?", re.S)
_RESOURCE_RE = re.compile(rb"rdf:resource\s{0,16}=\s{0,16}[\"']([^\"'<>]{1,512})[\"']")
_CREATOR_TOOL_RE = re.compile(
    rb"xmp:CreatorTool\s{0,16}=\s{0,16}[\"']([^\"'<>]{1,512})[\"']|<xmp:CreatorTool>([^<]{1,512})</xmp:CreatorTool>")


def _apply_xmp(prov: Provenance, packet: bytes) -> None:
    try:
        packet = packet[:MAX_XMP_BYTES]
        found: list[str] = []
        for m in _DST_ATTR_RE.finditer(packet):
            found.append(_xml_unescape(m.group(1)))
        for m in _DST_ELEM_RE.finditer(packet):
            if m.group(3):
                found.append(_xml_unescape(m.group(3)))
            else:
                r = _RESOURCE_RE.search(m.group(2) or b"")
                if r:
                    found.append(_xml_unescape(r.group(1)))
        for value in found:
            value = value.strip()
            if not value:
                continue
            if prov.iptc_source_type is None or (_source_term(value) in AI_SOURCE_TYPES
                                                 and _source_term(prov.iptc_source_type) not in AI_SOURCE_TYPES):
                prov.iptc_source_type = value
            term = _source_term(value)
            if term in AI_SOURCE_TYPES:
                prov._add_evidence(f"IPTC DigitalSourceType {term}")
        m = _CREATOR_TOOL_RE.search(packet)
        if m:
            tool_text = _xml_unescape(m.group(1) or m.group(2) or b"").strip()
            if tool_text:
                if not prov.software:
                    prov.software = _short(tool_text, 200)
                tool = _known_generator(tool_text)
                if tool:
                    prov._add_evidence(f"XMP CreatorTool names an image generator: {_short(tool_text, 80)!r} ({tool})")
    except Exception as exc:  # noqa: BLE001
        prov._add_error("XMP unreadable", exc)


def _xml_unescape(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    for ent, ch in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        text = text.replace(ent, ch)
    return text


def _source_term(value: str) -> str:
    """The term of a DigitalSourceType: the last part of the IPTC URI, or the value itself."""
    return value.strip().rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


# ------------------------------------------------------------------------------------------
# Generator text fields
# ------------------------------------------------------------------------------------------

_INVOKEAI_KEYS = ("invokeai_metadata", "invokeai_graph", "sd-metadata", "dream")
_NAME_FIELDS = ("software", "source", "comment", "description", "title", "author", "generator")


def _apply_texts(prov: Provenance, texts: dict[str, str]) -> None:
    lowered = {k.split(":", 1)[1].lower(): (k, v) for k, v in texts.items()}
    for name, (source, text) in lowered.items():
        try:
            _apply_text(prov, name, source, text, lowered)
        except Exception as exc:  # noqa: BLE001
            prov._add_error(f"text field {source!r} unreadable", exc)


def _apply_text(prov: Provenance, name: str, source: str, text: str, all_texts: dict) -> None:
    label = f"{source.split(':', 1)[0].upper()} text chunk {source.split(':', 1)[1]!r}"
    if name == "parameters":
        if _A1111_RE.search(text) or "sui_image_params" in text[:4096]:
            prov._add_generator_field(source, text, "Stable Diffusion web UI")
            prov._add_evidence(f"{label} (Stable Diffusion generation parameters)")
        return
    if name == "prompt":
        obj = _json(text)
        comfy_graph = isinstance(obj, dict) and any(isinstance(v, dict) and "class_type" in v for v in obj.values())
        tool = "ComfyUI" if comfy_graph or "workflow" in all_texts else "image generator"
        prov._add_generator_field(source, text, tool)
        prov._add_evidence(f"{label} ({tool})")
        return
    if name == "workflow":
        prov._add_generator_field(source, text, "ComfyUI")
        prov._add_evidence(f"{label} (ComfyUI)")
        return
    if name in _INVOKEAI_KEYS:
        prov._add_generator_field(source, text, "InvokeAI")
        prov._add_evidence(f"{label} (InvokeAI)")
        return
    if name == "fooocus_scheme":
        prov._add_generator_field(source, text, "Fooocus")
        prov._add_evidence(f"{label} (Fooocus)")
        return
    if name == "use_stable_diffusion_model":
        prov._add_generator_field(source, text, "Easy Diffusion")
        prov._add_evidence(f"{label} (Easy Diffusion)")
        return
    if name in _NAME_FIELDS:
        head = text[:4096]
        tool = _known_generator(head)
        if name == "description" and re.search(r"\bJob ID:\s*[0-9a-f-]{8,}", head, re.I):
            tool = tool or "Midjourney"
        if name == "comment" and tool is None:
            obj = _json(text)
            if isinstance(obj, dict) and {"steps", "sampler"} <= set(obj) and ("prompt" in obj or "uc" in obj):
                tool = "NovelAI-style generator"
        if _A1111_RE.search(head):
            tool = tool or "Stable Diffusion web UI"
        if tool:
            prov._add_generator_field(source, text, tool)
            prov._add_evidence(f"{label} names an image generator ({tool})")
            if name == "software" and not prov.software:
                prov.software = _short(text, 200)


def _known_generator(text: str) -> str | None:
    head = text[:4096]
    for rx, name in _GENERATOR_RES:
        if rx.search(head):
            return name
    return None


def _json(text: str):
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


# ------------------------------------------------------------------------------------------
# C2PA
# ------------------------------------------------------------------------------------------

def _c2pa_reader_context():
    """A fresh c2pa Context that never goes to the network (no remote manifests, no OCSP).

    Built per read (about 0.1 ms) so that no native object is shared between threads.
    """
    import c2pa

    settings = c2pa.Settings()
    settings.set("verify.remote_manifest_fetch", "false")
    settings.set("verify.ocsp_fetch", "false")
    settings.set("core.allowed_network_hosts", "[]")
    return c2pa.Context(settings)


def _apply_c2pa(prov: Provenance, data: bytes, mtype: str | None, where: bytes | None = None) -> None:
    # Embedded manifests live in JUMBF boxes labelled "c2pa"; without those bytes there is nothing to read.
    # `where`: the part of `data` they can be in (a JPEG's segments before its pixels); all of it by default.
    where = data if where is None else where
    if b"jumb" not in where and b"c2pa" not in where:
        return
    try:
        import c2pa
    except Exception as exc:  # noqa: BLE001
        prov._add_error("C2PA not read: c2pa-python unavailable", exc)
        return
    try:
        reader = c2pa.Reader.try_create(mtype or None, io.BytesIO(data), context=_c2pa_reader_context())
    except Exception as exc:  # noqa: BLE001
        prov._add_error("C2PA manifest unreadable", exc)
        return
    if reader is None:
        return
    try:
        store = json.loads(reader.json())
    except Exception as exc:  # noqa: BLE001
        prov._add_error("C2PA manifest unreadable", exc)
        return
    finally:
        try:
            reader.close()
        except Exception:  # noqa: BLE001, S110
            pass
    summary = _summarise_c2pa(store)
    prov.c2pa = summary
    for hit in summary.get("ai_source_types", []):
        where = "" if hit["manifest"] == "active" else " (in an ingredient's manifest)"
        action = f"action {hit['action']} with " if hit.get("action") else ""
        state = summary.get("validation_state")
        note = f"; manifest validation: {state}" if state and state.lower() not in ("valid", "trusted") else ""
        prov._add_evidence(f"C2PA {action}digitalSourceType {hit['term']}{where}{note}")


def _summarise_c2pa(store: dict) -> dict:
    manifests = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) if isinstance(manifests, dict) else None
    out: dict[str, Any] = {"manifests": len(manifests) if isinstance(manifests, dict) else 0}
    if isinstance(active, dict):
        gen = active.get("claim_generator")
        if not gen:
            info = active.get("claim_generator_info") or []
            if isinstance(info, list) and info and isinstance(info[0], dict):
                gen = " ".join(str(info[0].get(k)) for k in ("name", "version") if info[0].get(k))
        if gen:
            out["claim_generator"] = _short(str(gen), 200)
        sig = active.get("signature_info") or {}
        if isinstance(sig, dict):
            signer = sig.get("issuer") or sig.get("common_name")
            if signer:
                out["signed_by"] = _short(str(signer), 200)
    actions: list[dict] = []
    ai_hits: list[dict] = []
    source_types: list[str] = []
    for label, manifest in (manifests.items() if isinstance(manifests, dict) else ()):
        if not isinstance(manifest, dict):
            continue
        where = "active" if label == active_label else "ingredient"
        for assertion in manifest.get("assertions") or []:
            if not isinstance(assertion, dict):
                continue
            alabel = str(assertion.get("label", ""))
            payload = assertion.get("data")
            if alabel.startswith("c2pa.actions"):
                listed = payload.get("actions") if isinstance(payload, dict) else None
                for act in listed if isinstance(listed, list) else []:
                    if not isinstance(act, dict):
                        continue
                    name = str(act.get("action", ""))
                    params = act.get("parameters")
                    dst = act.get("digitalSourceType") or (
                        params.get("digitalSourceType") if isinstance(params, dict) else None)
                    if where == "active" and len(actions) < MAX_C2PA_ITEMS:
                        entry = {"action": name}
                        if dst:
                            entry["digitalSourceType"] = _short(str(dst), 200)
                        agent = act.get("softwareAgent")
                        if isinstance(agent, dict):
                            agent = agent.get("name")
                        if agent:
                            entry["softwareAgent"] = _short(str(agent), 200)
                        actions.append(entry)
                    if dst:
                        _note_source_type(str(dst), where, name, source_types, ai_hits)
            else:
                for dst in _find_source_types(payload, 0):
                    _note_source_type(dst, where, None, source_types, ai_hits)
    if actions:
        out["actions"] = actions
    if source_types:
        out["digital_source_types"] = source_types[:MAX_C2PA_ITEMS]
    out["ai"] = bool(ai_hits)
    if ai_hits:
        out["ai_source_types"] = ai_hits[:MAX_C2PA_ITEMS]
    state = store.get("validation_state")
    if state:
        out["validation_state"] = str(state)
    errors: list[str] = []
    results = store.get("validation_results") or {}
    failures: list = []
    am = results.get("activeManifest") if isinstance(results, dict) else None
    if isinstance(am, dict) and isinstance(am.get("failure"), list):
        failures = am["failure"]
    status = store.get("validation_status")
    for item in failures + (status if isinstance(status, list) else []):
        code = item.get("code") if isinstance(item, dict) else None
        if code and code not in errors and len(errors) < MAX_C2PA_ITEMS:
            errors.append(str(code))
    if errors:
        out["validation_errors"] = errors
    return out


def _note_source_type(value: str, where: str, action: str | None, seen: list[str], hits: list[dict]) -> None:
    if value not in seen:
        seen.append(value)
    term = _source_term(value)
    if term in AI_SOURCE_TYPES:
        hit = {"term": term, "manifest": where}
        if action:
            hit["action"] = action
        if hit not in hits:
            hits.append(hit)


def _find_source_types(obj, depth: int) -> list[str]:
    """DigitalSourceType values anywhere in an assertion (e.g. an IPTC photo-metadata assertion)."""
    found: list[str] = []
    if depth > 12:
        return found
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(k, str) and k.rsplit(":", 1)[-1].lower() == "digitalsourcetype" and isinstance(v, str):
                found.append(v)
            elif isinstance(v, (dict, list)):
                found.extend(_find_source_types(v, depth + 1))
    elif isinstance(obj, list):
        for v in obj[:200]:
            found.extend(_find_source_types(v, depth + 1))
    return found


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------

def _text(value) -> str:
    if isinstance(value, bytes):
        return value[:MAX_TEXT_CHARS].decode("utf-8", "replace")
    return str(value)[:MAX_TEXT_CHARS]


def _clean(value, limit: int = 200) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", " ").strip()
    return value[:limit] or None


def _short(text: str, limit: int) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
