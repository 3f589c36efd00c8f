"""Provenance signals: EXIF, GPS flag, XMP DigitalSourceType, generator text chunks, C2PA.

Every picture is a benign generated one (vigie.demo.photo_like); metadata is written
onto it with Pillow or by hand.
"""

from __future__ import annotations

import datetime
import io
import json
import random
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from vigie.demo import photo_like
from vigie.media import provenance as prov_mod
from vigie.media.provenance import EXCERPT_CHARS, Provenance, read_provenance

DST = "http://cv.iptc.org/newscodes/digitalsourcetype/"
A1111 = ("a lighthouse on a cliff, watercolour\nNegative prompt: blurry\n"
         "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 64x48, Model: sd_xl_base_1.0")
COMFY_PROMPT = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20}},
                           "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a bowl of fruit"}}})
COMFY_WORKFLOW = json.dumps({"last_node_id": 9, "nodes": [{"id": i, "type": "KSampler"} for i in range(60)]})


def _img(seed: int = 1) -> Image.Image:
    return photo_like(seed, 64, 48)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _camera_exif(*, gps: bool = True, offset: str | None = "+02:00", software: str = "Firmware Ver.1.0") -> Image.Exif:
    ex = Image.Exif()
    ex[0x010F] = "Canon"
    ex[0x0110] = "Canon EOS R5"
    ex[0x0131] = software
    sub = ex.get_ifd(0x8769)
    sub[0x9003] = "2023:05:01 10:11:12"
    if offset:
        sub[0x9011] = offset
    if gps:
        g = ex.get_ifd(0x8825)
        g[1], g[2], g[3], g[4] = "N", (48.0, 51.0, 24.12), "E", (2.0, 21.0, 7.5)
    return ex


def _xmp(dst: str, form: str = "attr", extra: str = "") -> bytes:
    ns = ('xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
          'xmlns:xmp="http://ns.adobe.com/xap/1.0/"')
    if form == "attr":
        desc = f'<rdf:Description rdf:about="" {ns} Iptc4xmpExt:DigitalSourceType="{dst}" {extra}/>'
    elif form == "element":
        desc = (f'<rdf:Description rdf:about="" {ns} {extra}>\n  <Iptc4xmpExt:DigitalSourceType>{dst}'
                f'</Iptc4xmpExt:DigitalSourceType>\n</rdf:Description>')
    else:  # resource
        desc = (f'<rdf:Description rdf:about="" {ns} {extra}>'
                f'<Iptc4xmpExt:DigitalSourceType rdf:resource="{dst}"/></rdf:Description>')
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            f'{desc}</rdf:RDF></x:xmpmeta>\n<?xpacket end="w"?>').encode()


def _jpeg_with_app1_xmp(xmp: bytes, seed: int = 1) -> bytes:
    """A JPEG with an XMP APP1 segment inserted by hand right after SOI."""
    jpeg = _save(_img(seed), "JPEG", quality=85)
    payload = b"http://ns.adobe.com/xap/1.0/\x00" + xmp
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def _png_insert_before_iend(png: bytes, chunk: bytes) -> bytes:
    i = png.rindex(b"IEND") - 4
    return png[:i] + chunk + png[i:]


def _png(seed: int = 1, **texts: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in texts.items():
        info.add_text(k, v)
    return _save(_img(seed), "PNG", pnginfo=info)


# ---------------------------------------------------------------------------------------
# EXIF
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "PNG"])
def test_camera_exif_is_read_and_gps_only_flagged(fmt):
    data = _save(_img(), fmt, exif=_camera_exif())
    p = read_provenance(data)
    assert p.camera_make == "Canon" and p.camera_model == "Canon EOS R5"
    assert p.taken_at == "2023-05-01T10:11:12+02:00"
    assert p.software == "Firmware Ver.1.0"
    assert p.gps is True
    assert p.ai_likely is False and p.evidence == [] and p.errors == []
    # The coordinates themselves are never kept.
    text = json.dumps(p.as_dict())
    assert "48.0" not in text and "51.0" not in text and "24.12" not in text


def test_taken_at_without_offset_and_fallback_to_digitized():
    ex = Image.Exif()
    ex.get_ifd(0x8769)[0x9004] = "2021:12:31 23:59:58"
    p = read_provenance(_save(_img(), "JPEG", exif=ex))
    assert p.taken_at == "2021-12-31T23:59:58"
    assert p.gps is False


def test_unset_camera_clock_is_an_error_not_a_date():
    ex = Image.Exif()
    ex.get_ifd(0x8769)[0x9003] = "0000:00:00 00:00:00"
    p = read_provenance(_save(_img(), "JPEG", exif=ex))
    assert p.taken_at is None
    assert any("DateTimeOriginal" in e for e in p.errors)


def test_gps_directory_without_coordinates_is_not_flagged():
    ex = Image.Exif()
    ex[0x010F] = "Apple"
    ex.get_ifd(0x8825)[0] = b"\x02\x02\x00\x00"  # GPSVersionID only
    p = read_provenance(_save(_img(), "JPEG", exif=ex))
    assert p.camera_make == "Apple" and p.gps is False


def test_camera_exif_alone_never_clears_other_evidence():
    data = _save(_img(), "PNG", exif=_camera_exif(), pnginfo=_info(parameters=A1111))
    p = read_provenance(data)
    assert p.camera_make == "Canon"
    assert p.ai_likely is True


@pytest.mark.parametrize("software, tool", [("NovelAI", "NovelAI"), ("Adobe Firefly 2.0", "Adobe Firefly"),
                                            ("ComfyUI", "ComfyUI"), ("Midjourney v6", "Midjourney")])
def test_exif_software_naming_a_generator(software, tool):
    p = read_provenance(_save(_img(), "JPEG", exif=_camera_exif(gps=False, software=software)))
    assert p.ai_likely is True
    assert any("EXIF Software" in e and tool in e for e in p.evidence)


@pytest.mark.parametrize("software", ["Adobe Photoshop 25.0 (Windows)", "GIMP 2.10.36", "Firmware 1.2.0", "darktable"])
def test_ordinary_software_is_not_evidence(software):
    p = read_provenance(_save(_img(), "JPEG", exif=_camera_exif(gps=False, software=software)))
    assert p.software == software and p.ai_likely is False and p.evidence == []


def test_a1111_parameters_in_exif_usercomment():
    """AUTOMATIC1111 saves JPEG/WebP with the parameters in EXIF UserComment (UNICODE, UTF-16)."""
    ex = Image.Exif()
    ex.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111.encode("utf-16-be")
    for fmt in ("JPEG", "WEBP"):
        p = read_provenance(_save(_img(), fmt, exif=ex))
        assert p.ai_likely is True, fmt
        assert p.generator and "exif:UserComment" in p.generator["fields"]
        assert "Stable Diffusion web UI" in p.generator["tools"]


# ---------------------------------------------------------------------------------------
# PNG generator text chunks
# ---------------------------------------------------------------------------------------

def _info(**texts: str) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    for k, v in texts.items():
        info.add_text(k, v)
    return info


def test_png_parameters_stable_diffusion():
    p = read_provenance(_png(parameters=A1111))
    assert p.ai_likely is True
    assert p.generator["tools"] == ["Stable Diffusion web UI"]
    assert p.generator["fields"]["png:parameters"].startswith("a lighthouse")
    assert "PNG text chunk 'parameters' (Stable Diffusion generation parameters)" in p.evidence


def test_png_comfyui_prompt_and_workflow_itxt_and_ztxt():
    info = PngImagePlugin.PngInfo()
    info.add_itxt("prompt", COMFY_PROMPT)
    info.add_text("workflow", COMFY_WORKFLOW, zip=True)  # zTXt
    p = read_provenance(_save(_img(), "PNG", pnginfo=info))
    assert p.ai_likely is True
    assert p.generator["tools"] == ["ComfyUI"]
    assert {"png:prompt", "png:workflow"} <= set(p.generator["fields"])
    # Excerpts are short: a long workflow is cut.
    assert len(COMFY_WORKFLOW) > EXCERPT_CHARS
    assert all(len(v) <= EXCERPT_CHARS for v in p.generator["fields"].values())
    assert any("'prompt' (ComfyUI)" in e for e in p.evidence)
    assert any("'workflow' (ComfyUI)" in e for e in p.evidence)


def test_png_text_after_the_image_data_is_read():
    png = _png()
    png = _png_insert_before_iend(png, _png_chunk(b"tEXt", b"parameters\x00" + A1111.encode("latin-1")))
    p = read_provenance(png)
    assert p.ai_likely is True and "png:parameters" in p.generator["fields"]


@pytest.mark.parametrize("texts, tool", [
    ({"invokeai_metadata": json.dumps({"positive_prompt": "a teapot", "steps": 30})}, "InvokeAI"),
    ({"Software": "NovelAI", "Comment": json.dumps({"prompt": "a cat", "steps": 28, "sampler": "k_euler"})},
     "NovelAI"),
    ({"Description": "a red bicycle --ar 3:2 Job ID: 0f9c2b8e-1d3a-4a55-9a77-1b2c3d4e5f60"}, "Midjourney"),
    ({"fooocus_scheme": "fooocus"}, "Fooocus"),
])
def test_other_generators_in_png_text(texts, tool):
    p = read_provenance(_png(**texts))
    assert p.ai_likely is True
    assert tool in p.generator["tools"]


def test_png_text_that_is_not_generator_output():
    p = read_provenance(_png(parameters="exposure=1/60 iso=200", Title="Holiday", Author="Jane"))
    assert p.ai_likely is False and p.evidence == [] and p.generator is None


# ---------------------------------------------------------------------------------------
# XMP / IPTC DigitalSourceType
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("term", sorted(prov_mod.AI_SOURCE_TYPES))
def test_iptc_ai_source_types_in_jpeg_app1(term):
    p = read_provenance(_jpeg_with_app1_xmp(_xmp(DST + term)))
    assert p.iptc_source_type == DST + term
    assert p.ai_likely is True
    assert f"IPTC DigitalSourceType {term}" in p.evidence


def test_iptc_digital_capture_is_recorded_but_not_ai():
    p = read_provenance(_jpeg_with_app1_xmp(_xmp(DST + "digitalCapture")))
    assert p.iptc_source_type == DST + "digitalCapture"
    assert p.ai_likely is False and p.evidence == []


def test_iptc_element_form_in_png_itxt():
    png = _png()
    body = b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + _xmp(DST + "compositeSynthetic", form="element")
    p = read_provenance(_png_insert_before_iend(png, _png_chunk(b"iTXt", body)))
    assert p.iptc_source_type == DST + "compositeSynthetic" and p.ai_likely is True


@pytest.mark.parametrize("fmt", ["WEBP", "TIFF", "HEIF"])
def test_iptc_in_other_containers(fmt):
    xmp = _xmp(DST + "trainedAlgorithmicMedia", form="resource")
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    kw = {"tiffinfo": {700: xmp}} if fmt == "TIFF" else {"xmp": xmp}
    p = read_provenance(_save(_img(), fmt, **kw))
    assert p.ai_likely is True, p.as_dict()
    assert p.iptc_source_type.endswith("trainedAlgorithmicMedia")


def test_iptc_in_a_container_read_by_raw_scan():
    """GIF (and anything else) carrying an XMP packet: found by the bounded raw scan."""
    gif = _save(_img(), "GIF")
    data = gif[:-1] + b"\x21\xff\x0bXMP DataXMP" + _xmp(DST + "trainedAlgorithmicMedia") + b"\x00" + gif[-1:]
    p = read_provenance(data)
    assert p.ai_likely is True


def test_xmp_creator_tool_naming_a_generator():
    xmp = _xmp(DST + "digitalCapture", extra='xmp:CreatorTool="Adobe Firefly"')
    p = read_provenance(_jpeg_with_app1_xmp(xmp))
    assert p.software == "Adobe Firefly"
    assert any("CreatorTool" in e for e in p.evidence) and p.ai_likely is True


def test_xmp_entities_are_never_expanded():
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
              + "".join(f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10))
              + "]>").encode()
    xmp = laughs + _xmp("&lol9;")
    p = read_provenance(_jpeg_with_app1_xmp(xmp))
    assert p.ai_likely is False
    assert p.iptc_source_type == "&lol9;"


# ---------------------------------------------------------------------------------------
# No metadata, hostile input
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"])
def test_plain_pictures_have_no_evidence(fmt):
    p = read_provenance(_save(_img(7), fmt))
    assert isinstance(p, Provenance)
    assert p.ai_likely is False and p.evidence == [] and p.errors == []
    assert p.generator is None and p.c2pa is None and p.iptc_source_type is None
    assert p.as_dict() == {"gps": False, "ai_likely": False}


def test_as_dict_is_compact():
    d = read_provenance(_png(parameters=A1111)).as_dict()
    assert None not in d.values()
    assert set(d) == {"gps", "generator", "ai_likely", "evidence"}
    json.dumps(d)


def _samples() -> list[bytes]:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111)
    info.add_itxt("prompt", COMFY_PROMPT, zip=True)
    return [
        _save(_img(), "JPEG", exif=_camera_exif()),
        _save(_img(), "PNG", pnginfo=info, exif=_camera_exif()),
        _save(_img(), "WEBP", exif=_camera_exif(), xmp=_xmp(DST + "trainedAlgorithmicMedia")),
        _save(_img(), "TIFF", tiffinfo={700: _xmp(DST + "compositeSynthetic")}),
        _jpeg_with_app1_xmp(_xmp(DST + "algorithmicMedia", form="element")),
        _save(_img(), "GIF"),
    ]


def test_random_bytes_never_raise():
    rng = random.Random(1234)
    heads = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP", b"II*\x00", b"MM\x00*",
             b"\x00\x00\x00\x18ftypheic", b"GIF89a", b"Exif\x00\x00", b"<x:xmpmeta", b"jumbc2pa"]
    for i in range(300):
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 2048)))
        data = heads[i % len(heads)] + body
        for mt in (None, "image/jpeg", "image/png", "video/mp4"):
            p = read_provenance(data, mt)
            assert isinstance(p, Provenance)
            p.as_dict()


def test_truncated_and_bit_flipped_files_never_raise():
    rng = random.Random(99)
    for data in _samples():
        cuts = sorted({0, 1, 2, 7, 8, 12, 16, 33, 64, 100, 200, 500, len(data) // 2, len(data) - 1}
                      | {rng.randrange(len(data)) for _ in range(20)})
        for n in cuts:
            assert isinstance(read_provenance(data[:n]), Provenance)
        for _ in range(40):
            b = bytearray(data)
            for _ in range(rng.randrange(1, 8)):
                b[rng.randrange(len(b))] = rng.getrandbits(8)
            read_provenance(bytes(b)).as_dict()


def test_hostile_png_chunks_stay_bounded():
    # A zTXt chunk that inflates to 50 MB is read up to the cap only; a chunk claiming 4 GB is survived.
    bomb = zlib.compress(b"A" * 50_000_000, 9)
    png = _png_insert_before_iend(_png(), _png_chunk(b"zTXt", b"parameters\x00\x00" + bomb))
    p = read_provenance(png)
    assert p.ai_likely is False
    liar = _png()[:33] + struct.pack(">I", 0xFFFFFFF0) + b"tEXt" + b"prompt\x00x"
    p = read_provenance(liar)
    assert isinstance(p, Provenance) and any("truncated" in e for e in p.errors)


def test_accepts_bytearray_and_memoryview():
    data = _png(parameters=A1111)
    assert read_provenance(bytearray(data)).ai_likely is True
    assert read_provenance(memoryview(data)).ai_likely is True  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# C2PA
# ---------------------------------------------------------------------------------------

def test_c2pa_is_not_run_on_files_without_jumbf(monkeypatch):
    c2pa = pytest.importorskip("c2pa")

    def boom(*a, **k):
        raise AssertionError("c2pa reader called")

    monkeypatch.setattr(c2pa.Reader, "try_create", boom)
    assert read_provenance(_save(_img(), "JPEG")).errors == []


def test_c2pa_failure_is_recorded_not_raised(monkeypatch):
    c2pa = pytest.importorskip("c2pa")

    def boom(*a, **k):
        raise RuntimeError("native library exploded")

    monkeypatch.setattr(c2pa.Reader, "try_create", boom)
    p = read_provenance(_save(_img(), "JPEG", comment=b"jumbc2pa"))  # in the segments before the pixels
    assert p.c2pa is None and any("C2PA" in e and "exploded" in e for e in p.errors)


def test_a_jpeg_is_searched_for_c2pa_and_xmp_before_its_pixels_only(monkeypatch):
    """JPEG keeps XMP (APP1) and C2PA (APP11) in the segments before its first scan: the raw searches stop
    there, rather than read a camera photo's megabytes; the same bytes after the pixels are not metadata."""
    c2pa = pytest.importorskip("c2pa")
    calls = []
    monkeypatch.setattr(c2pa.Reader, "try_create", lambda *a, **k: calls.append(1))
    read_provenance(_save(_img(), "JPEG") + b"jumbc2pa")
    assert calls == []  # after the pixels: not looked at
    read_provenance(_save(_img(), "JPEG", comment=b"c2pa"))
    assert calls == [1]
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' \
          b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Midjourney"/></rdf:RDF>' \
          b'</x:xmpmeta>'
    inside = read_provenance(_save(_img(), "JPEG", xmp=xmp))
    trailing = read_provenance(_save(_img(), "JPEG") + xmp)
    assert inside.as_dict() != read_provenance(_save(_img(), "JPEG")).as_dict()  # the XMP in APP1 is read
    assert trailing.as_dict() == read_provenance(_save(_img(), "JPEG")).as_dict()


def _test_signer():
    """A throwaway ES256 signer: a test root CA and a leaf certificate, made fresh in memory."""
    c2pa = pytest.importorskip("c2pa")
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigie tests")])

    def usage(**on):
        keys = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{k: on.get(k, False) for k in keys})

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    valid = {"not_valid_before": now - datetime.timedelta(days=1), "not_valid_after": now + datetime.timedelta(days=7)}
    ca = (x509.CertificateBuilder(subject_name=name("Vigie Test Root"), issuer_name=name("Vigie Test Root"),
                                  public_key=ca_key.public_key(), serial_number=x509.random_serial_number(), **valid)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder(subject_name=name("Vigie Test Signer"), issuer_name=name("Vigie Test Root"),
                                    public_key=key.public_key(), serial_number=x509.random_serial_number(), **valid)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    info = c2pa.C2paSignerInfo(alg=b"es256", sign_cert=pem, private_key=key_pem, ta_url=None)
    return c2pa.Signer.from_info(info)


def _c2pa_signed(fmt: str, mime: str, source_type: str, seed: int = 5) -> bytes:
    import c2pa

    manifest = {
        "claim_generator_info": [{"name": "vigie-tests", "version": "1.0"}],
        "title": f"synthetic.{fmt.lower()}",
        "format": mime,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.created", "digitalSourceType": DST + source_type,
             "softwareAgent": {"name": "Example Generator"}}]}}],
    }
    src, dst = io.BytesIO(_save(_img(seed), fmt)), io.BytesIO()
    try:
        c2pa.Builder(manifest).sign(_test_signer(), mime, src, dst)
    except c2pa.C2paError as exc:  # pragma: no cover - depends on the native library's cert checks
        pytest.skip(f"c2pa-python could not sign with a test certificate: {exc}")
    return dst.getvalue()


@pytest.mark.parametrize("fmt, mime", [("JPEG", "image/jpeg"), ("PNG", "image/png")])
def test_c2pa_created_with_trained_algorithmic_media(fmt, mime):
    data = _c2pa_signed(fmt, mime, "trainedAlgorithmicMedia")
    p = read_provenance(data)
    assert p.ai_likely is True
    assert "C2PA action c2pa.created with digitalSourceType trainedAlgorithmicMedia" in p.evidence
    c = p.c2pa
    assert c["ai"] is True and c["claim_generator"] == "vigie-tests 1.0"
    assert c["actions"][0] == {"action": "c2pa.created", "digitalSourceType": DST + "trainedAlgorithmicMedia",
                               "softwareAgent": "Example Generator"}
    # Signature intact; the test root is in no trust list, which the summary says.
    assert c["validation_state"] == "Valid"
    assert "signingCredential.untrusted" in c["validation_errors"]


def test_c2pa_digital_capture_is_not_ai():
    p = read_provenance(_c2pa_signed("JPEG", "image/jpeg", "digitalCapture"))
    assert p.c2pa is not None and p.c2pa["ai"] is False
    assert p.ai_likely is False and p.evidence == []


def test_c2pa_tampered_file_still_reports_the_claim_with_its_validation():
    data = bytearray(_c2pa_signed("JPEG", "image/jpeg", "trainedAlgorithmicMedia"))
    data[-200] ^= 0xFF  # inside the entropy-coded pixel data: the data hash no longer matches
    p = read_provenance(bytes(data))
    assert p.ai_likely is True
    assert p.c2pa["validation_state"] == "Invalid"
    assert "assertion.dataHash.mismatch" in p.c2pa["validation_errors"]
    assert any("manifest validation: Invalid" in e for e in p.evidence)


def test_c2pa_truncated_file_is_an_error_not_an_exception():
    data = _c2pa_signed("JPEG", "image/jpeg", "trainedAlgorithmicMedia")
    for n in (len(data) // 4, len(data) // 2, len(data) - 10):
        p = read_provenance(data[:n])
        assert isinstance(p, Provenance)
        p.as_dict()
