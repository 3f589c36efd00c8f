"""Variants end to end: entries with media get crop/border variants; turning variants off is plain PDQ."""

from __future__ import annotations

from PIL import ImageOps

from vigie.banks import service as banks
from vigie.banks.records import EntryData
from vigie.hashing import hash_bytes
from vigie.matching import Matcher, Query

import factory


def crop(img, frac):
    w, h = img.size
    dx, dy = int(w * (1 - frac) / 2), int(h * (1 - frac) / 2)
    return img.crop((dx, dy, w - dx, h - dy))


def test_entry_with_media_matches_cropped_copy(store, tmp_path):
    settings = store.settings
    original = factory.picture(900, 480, 360)
    data = factory.save(original, "PNG")
    banks.create_bank(store, "hash-only")
    banks.create_bank(store, "with-media")
    plain = hash_bytes(data, settings)
    banks.import_entries(store, "hash-only", [(1, EntryData("pdq", plain.pdq))])
    added = banks.add_media(store, "with-media", data, settings, path="orig.png")
    assert set(added.entries) == {"md5", "sha1", "sha256", "pdq"}
    assert {"crop95", "crop90", "crop80"} <= set(added.variants)
    q = hash_bytes(factory.save(crop(original, 0.9), "JPEG", quality=90), settings, variants=True)
    res = Matcher(store, settings).match([Query.from_record(q)])[0]
    assert [m.bank for m in res.matches] == ["with-media"]  # the hash-only entry misses the crop
    assert res.matches[0].entry_variant.startswith("crop")


def test_variants_off_is_plain_pdq_exactly(store, tmp_path):
    settings = store.settings.model_copy(update={"dihedral": False, "variant_unbordered": False,
                                                  "variant_region": False, "variant_crops": False})
    pics = [factory.picture(910 + i, 320, 240) for i in range(4)]
    banks.create_bank(store, "b")
    for i, p in enumerate(pics[:3]):
        banks.add_media(store, "b", factory.save(p, "PNG"), settings, path=f"{i}.png")
    altered = [pics[0], ImageOps.mirror(pics[1]), ImageOps.expand(pics[2], 32, fill=(0, 0, 0)),
               crop(pics[0], 0.9), pics[3]]
    with_off, plain = [], []
    for img in altered:
        data = factory.save(img, "JPEG", quality=85)
        rec = hash_bytes(data, settings, variants=True)
        assert rec.pdq_variants == []  # nothing but the plain hash
        with_off.append(Query.from_record(rec))
        plain.append(Query.from_hash(hash_bytes(data, settings).pdq))
    m = Matcher(store, settings)
    a = [[(x.entry_id, x.distance) for x in r.matches] for r in m.match(with_off)]
    b = [[(x.entry_id, x.distance) for x in r.matches] for r in m.match(plain)]
    assert a == b
    assert a[0] and not a[1] and not a[2]  # plain PDQ finds the copy, misses the mirror and the border


def test_hash_cli_variants_json(tmp_path):
    from test_cli_hash import lines, vigie

    p = factory.write(tmp_path, "b.jpg", factory.save(ImageOps.expand(factory.picture(920), 40, fill="white"),
                                                      "JPEG"))
    rec = lines(vigie("hash", "--json", "--variants", str(p)).stdout)[0]
    kinds = {v["kind"] for v in rec["pdq_variants"]}
    assert {"rot90", "rot180", "rot270", "flipx", "flipy", "transpose", "transverse", "unbordered"} <= kinds
    assert all(len(v["pdq"]) == 64 for v in rec["pdq_variants"])
