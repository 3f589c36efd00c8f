"""The `hma_compat` query variant end to end: a list hashed the HMA way matches Vigie's query.

A partner's list holds HMA's hash of a palette or CMYK picture (its palette indices, its raw
C/M/Y channels); Vigie's plain hash of the same file is far from it. These tests use Vigie's own
computation of HMA's value (tests/test_parity_pdq.py proves it equals python-threatexchange's, bit
for bit) so that they run without the parity venv.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.cli import main
from vigie.hashing import hash_bytes
from vigie.matching import Matcher, Query
from vigie.signals.base import hamming_hex
from vigie.signals.hma_compat import KIND, differs_from_vigie, hma_array, hma_pdq, hma_pdq_bytes
from vigie.signals.variants import compute_variants

import factory


def palette_png(seed: int) -> bytes:
    """A palette picture whose palette order is shuffled: its indices say nothing of its colours."""
    p = factory.picture(seed, 320, 240).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    return factory.save(p.remap_palette(np.random.default_rng(seed).permutation(256).tolist()), "PNG")


def cmyk_jpeg(seed: int) -> bytes:
    return factory.save(factory.picture(seed, 320, 240).convert("CMYK"), "JPEG", quality=92)


@pytest.mark.parametrize("make", [palette_png, cmyk_jpeg], ids=["palette", "cmyk"])
def test_matches_a_list_hashed_the_hma_way(store, make):
    settings = store.settings
    data = make(31)
    theirs = hma_pdq_bytes(data)
    rec = hash_bytes(data, settings)
    assert theirs is not None and theirs.quality >= 50
    assert hamming_hex(rec.pdq, theirs.hex) > 31  # the plain hash alone would miss the partner's entry
    banks.create_bank(store, "partner")
    banks.import_entries(store, "partner", [(1, EntryData("pdq", theirs.hex))])
    for variants in (False, True):
        res = Matcher(store, settings).match([Query.from_record(hash_bytes(data, settings, variants=variants))])[0]
        assert [(m.bank, m.distance, m.query_variant) for m in res.matches] == [("partner", 0, KIND)]
    off = settings.model_copy(update={"variant_hma_compat": False})
    res = Matcher(store, off).match([Query.from_record(hash_bytes(data, off, variants=True))])[0]
    assert res.matches == []


def test_vigie_match_cli_reports_the_variant(tmp_path, capsys, monkeypatch):
    data = palette_png(32)
    pic = tmp_path / "p.png"
    pic.write_bytes(data)
    lst = tmp_path / "list.te"
    lst.write_text(f"pdq {hma_pdq_bytes(data).hex}\n")
    d = str(tmp_path / "data")

    def run(*args):
        with pytest.raises(SystemExit) as exc:
            main([*args, "--data-dir", d])
        return exc.value.code, capsys.readouterr().out

    assert run("bank", "create", "partner", "--json")[0] == 0
    assert run("bank", "import", "partner", str(lst), "-f", "te", "--json")[0] == 0
    for extra in ((), ("--no-dihedral",)):
        status, out = run("match", str(pic), "--json", *extra)
        got = [json.loads(x) for x in out.splitlines() if x.strip()]
        assert status == 0, out
        assert [(m["bank"], m["distance"], m["query_variant"]) for m in got[0]["matches"]] == \
            [("partner", 0, KIND)], out


def test_conversion_rules():
    rgb = factory.picture(33, 64, 48)
    # modes HMA hashes like Vigie: no variant
    for mode in ("RGB", "L"):
        assert not differs_from_vigie(mode) and not differs_from_vigie(mode, "composite")
    assert not differs_from_vigie("RGBA") and differs_from_vigie("RGBA", "composite")
    for mode in ("P", "1", "CMYK", "I;16", "YCbCr", "LAB", "I;16B", "PA"):
        assert differs_from_vigie(mode)
    assert hma_pdq_bytes(factory.save(rgb, "PNG")) is None  # nothing to add for RGB
    # palette: the indices, repeated into three channels
    p = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    a = hma_array(p)
    assert a.dtype == np.uint8 and (a[:, :, 0] == np.asarray(p)).all() and (a[:, :, 2] == a[:, :, 1]).all()
    # CMYK: the first three channels as stored
    c = rgb.convert("CMYK")
    assert (hma_array(c) == np.asarray(c)).all()  # all four; pdqhash reads the first three
    # 1-bit: values 0 and 1, so a low quality
    one = hma_array(rgb.convert("1"))
    assert one.dtype == np.bool_
    assert hma_pdq(rgb.convert("1")).quality < 50
    # 16-bit grey: Pillow's RGB conversion, clipped at 255
    g = Image.frombytes("I;16", (4, 1), np.array([0, 200, 300, 65535], "<u2").tobytes())
    assert hma_array(g)[0, :, 0].tolist() == [0, 200, 255, 255]
    # what pdqhash refuses: no hash at all
    for img in (Image.frombytes("I;16B", (8, 8), bytes(128)), Image.new("I", (8, 8)), Image.new("F", (8, 8)),
                Image.new("PA", (8, 8))):
        assert hma_array(img) is None and hma_pdq(img) is None
    # a file that does not decode
    assert hma_pdq_bytes(b"not a picture", only_if_different=False) is None


def test_compute_variants_takes_the_file_bytes(settings):
    data = palette_png(34)
    from vigie.media.decode import decode_image

    rgb = decode_image(data)
    _, without = compute_variants(rgb, settings)
    _, with_data = compute_variants(rgb, settings, data=data)
    assert KIND not in [v["kind"] for v in without]
    assert with_data[0]["kind"] == KIND and with_data[0]["pdq"] == hma_pdq_bytes(data).hex
    assert [v for v in with_data if v["kind"] != KIND] == without
