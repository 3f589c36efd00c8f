"""Android Gallery thumbnails (`DCIM/.thumbnails/<n>.jpg`) are linked to the pictures and videos they were made
of through the MediaStore database (`external.db`) found in the same scan (`vigie.ingest.mediastore`), in
whatever order the walk meets them; a hostile or foreign database gives an error in its row, never a crash."""

from __future__ import annotations

import sqlite3
import struct
import subprocess

import pytest
from test_evidence_formats import pic
from test_evidence_read_once import MKE2FS
from test_scan_thumbnail_links import scan_links

from vigie.ingest import mediastore, thumbdata

PHONE = "/storage/emulated/0"


def media_db(path, thumbs: list[tuple[int, str, int]], files: list[tuple], videos=()) -> bytes:
    """A MediaStore database shaped as Android's (the columns read; the rest of its schema left out); `files`:
    `(id, path)` or `(id, path, mini_thumb_magic)`, pictures unless the path ends in `.mp4`."""
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE files (_id INTEGER PRIMARY KEY AUTOINCREMENT, _data TEXT UNIQUE COLLATE NOCASE,
                            _size INTEGER, media_type INTEGER, date_modified INTEGER, mini_thumb_magic INTEGER);
        CREATE TABLE thumbnails (_id INTEGER PRIMARY KEY, _data TEXT, image_id INTEGER, kind INTEGER,
                                 width INTEGER, height INTEGER);
        CREATE TABLE videothumbnails (_id INTEGER PRIMARY KEY, _data TEXT, video_id INTEGER, kind INTEGER,
                                      width INTEGER, height INTEGER);
        CREATE VIEW images AS SELECT * FROM files WHERE media_type = 1;
    """)
    con.executemany("INSERT INTO files (_id, _data, media_type, mini_thumb_magic) VALUES (?, ?, ?, ?)",
                    [(f[0], f[1], 3 if f[1].endswith(".mp4") else 1, f[2] if len(f) > 2 else None) for f in files])
    con.executemany("INSERT INTO thumbnails (_id, _data, image_id, kind) VALUES (?, ?, ?, 1)", thumbs)
    con.executemany("INSERT INTO videothumbnails (_id, _data, video_id, kind) VALUES (?, ?, ?, 1)", videos)
    con.commit()
    con.close()
    return path.read_bytes()


def test_read_gives_each_thumbnail_its_original(tmp_path):
    data = media_db(tmp_path / "external.db",
                    [(1, f"{PHONE}/DCIM/.thumbnails/1500000000001.jpg", 7),
                     (2, f"{PHONE}/DCIM/.thumbnails/1500000000002.jpg", 99)],  # its picture's row is gone
                    [(7, f"{PHONE}/DCIM/Camera/IMG_0007.jpg"), (8, f"{PHONE}/Movies/v.mp4")],
                    videos=[(1, f"{PHONE}/DCIM/.thumbnails/1500000000003.jpg", 8)])
    got = mediastore.read(data)
    assert got == {"links": [[f"{PHONE}/DCIM/.thumbnails/1500000000001.jpg", f"{PHONE}/DCIM/Camera/IMG_0007.jpg",
                              "image"],
                             [f"{PHONE}/DCIM/.thumbnails/1500000000003.jpg", f"{PHONE}/Movies/v.mp4", "video"]],
                   "count": 2, "images": [[7, f"{PHONE}/DCIM/Camera/IMG_0007.jpg", None]]}
    assert mediastore.key(f"{PHONE}/DCIM/.thumbnails/1500000000001.JPG") == ".thumbnails/1500000000001.jpg"
    assert mediastore.key("/case/phone.img!p3/media/0/DCIM/.thumbnails/1500000000001.jpg") == \
        ".thumbnails/1500000000001.jpg"
    assert mediastore.key(f"{PHONE}/DCIM/Camera/IMG_0007.jpg") == "camera/img_0007.jpg"  # in no thumbnail's
    assert mediastore.key("IMG_0007.jpg") is None
    assert mediastore.is_mediastore("/x/databases/external.db") and not mediastore.is_mediastore("/x/a.db")


def test_hostile_or_foreign_databases_give_an_error_not_a_crash(tmp_path):
    assert mediastore.read(b"not sqlite at all")["error"] == "not a SQLite database"
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (x)")
    con.commit()
    con.close()
    assert "not a MediaStore database" in mediastore.read(other.read_bytes())["error"]
    # a view named like the table is not read (its SQL is the file's, not ours)
    viewdb = tmp_path / "view.db"
    con = sqlite3.connect(viewdb)
    con.executescript("CREATE TABLE files (_id INTEGER PRIMARY KEY, _data TEXT);"
                      "CREATE VIEW thumbnails AS SELECT 1 AS _data, 1 AS image_id;")
    con.close()
    assert "error" in mediastore.read(viewdb.read_bytes())
    # a database whose join cannot finish within the step budget (a thumbnail table with no usable key)
    slow = tmp_path / "slow.db"
    con = sqlite3.connect(slow)
    con.executescript("CREATE TABLE files (_id, _data); CREATE TABLE thumbnails (_data, image_id);")
    con.executemany("INSERT INTO files VALUES (?, ?)", ((i, f"/f{i}") for i in range(3000)))
    con.executemany("INSERT INTO thumbnails VALUES (?, ?)", ((f"/t{i}", -1) for i in range(3000)))
    con.commit()
    con.close()
    saved = mediastore.MAX_STEPS
    mediastore.MAX_STEPS = 2  # thousands of SQLite steps: the 3,000 rows need far more
    try:
        assert "interrupted" in mediastore.read(slow.read_bytes())["error"]
    finally:
        mediastore.MAX_STEPS = saved
    cut = media_db(tmp_path / "external.db", [(1, "/a/.thumbnails/1.jpg", 1)], [(1, "/a/b.jpg")])
    got = mediastore.read(cut[:len(cut) // 2] + b"\0" * 10)  # truncated: an error, or what is readable
    assert "error" in got or "links" in got


def test_a_scan_links_gallery_thumbnails_whatever_the_walk_order(store, tmp_path):
    sd = tmp_path / "phone" / "media" / "0"
    (sd / "DCIM" / ".thumbnails").mkdir(parents=True)
    (sd / "DCIM" / "Camera").mkdir(parents=True)
    known = pic(600, size=(96, 72))
    (sd / "DCIM" / ".thumbnails" / "1500000000001.jpg").write_bytes(known)  # its picture deleted from Camera/
    (sd / "DCIM" / ".thumbnails" / "1500000000002.jpg").write_bytes(pic(601, size=(96, 72)))
    (sd / "DCIM" / "Camera" / "IMG_0002.jpg").write_bytes(pic(602))
    # the database sorts after the thumbnails in the walk ("phone/data" < "phone/media": put it under "zz")
    db_dir = tmp_path / "phone" / "zz" / "com.android.providers.media" / "databases"
    db_dir.mkdir(parents=True)
    media_db(db_dir / "external.db",
             [(1, f"{PHONE}/DCIM/.thumbnails/1500000000001.jpg", 1),
              (2, f"{PHONE}/DCIM/.thumbnails/1500000000002.jpg", 2)],
             [(1, f"{PHONE}/DCIM/Camera/IMG_0001.jpg"), (2, f"{PHONE}/DCIM/Camera/IMG_0002.jpg")])
    out = tmp_path / "out"
    summary, rows = scan_links(store, tmp_path / "phone", out, known)
    assert summary["thumbnail_links"] == {"count": 2, "known": 1}
    gone = rows[f"{PHONE}/DCIM/Camera/IMG_0001.jpg"]
    assert gone["class"] == "exact" and gone["bank"] == "known" and gone["linked_by"] == "mediastore"
    assert gone["location"] == f"{sd}/DCIM/.thumbnails/1500000000001.jpg"
    assert rows[f"{PHONE}/DCIM/Camera/IMG_0002.jpg"]["class"] == "unknown"
    page = (out / "report.html").read_text()
    assert "Thumbnails of known material: 1" in page and f"{PHONE}/DCIM/Camera/IMG_0001.jpg" in page


def aosp_thumbdata(slots: dict[int, tuple[int, bytes]]) -> bytes:
    """A `.thumbdata3` cache as Android's `MiniThumbFile` writes it: picture id `n`'s thumbnail in the slot at
    `n * 10000`: a byte 1, its magic (a big-endian long), its length (a big-endian int), the JPEG."""
    out = bytearray((max(slots) + 1) * thumbdata.SLOT_BYTES)
    for image_id, (magic, jpeg) in slots.items():
        at = image_id * thumbdata.SLOT_BYTES
        out[at:at + 13 + len(jpeg)] = b"\x01" + struct.pack(">qi", magic, len(jpeg)) + jpeg
    return bytes(out)


def test_thumbdata_slots_are_linked_by_picture_id_when_the_magic_matches(store, tmp_path):
    sd = tmp_path / "phone" / "media" / "0"
    (sd / "DCIM" / ".thumbnails").mkdir(parents=True)
    known = pic(610, size=(96, 72))
    cache = aosp_thumbdata({3: (-4242424242424242, known),  # its picture's row keeps this magic: linked
                            5: (77, pic(611, size=(96, 72))),  # its row keeps another magic: a stale slot
                            7: (78, pic(612, size=(96, 72)))})  # no picture with this id
    (sd / "DCIM" / ".thumbnails" / ".thumbdata3--1967290299").write_bytes(cache)
    db_dir = tmp_path / "phone" / "zz"
    db_dir.mkdir(parents=True)
    media_db(db_dir / "external.db", [],
             [(3, f"{PHONE}/DCIM/Camera/IMG_0003.jpg", -4242424242424242), (5, f"{PHONE}/DCIM/Camera/IMG_0005.jpg", 9)])
    out = tmp_path / "out"
    summary, rows = scan_links(store, tmp_path / "phone", out, known)
    assert summary["thumbnail_links"] == {"count": 1, "known": 1}
    got = rows[f"{PHONE}/DCIM/Camera/IMG_0003.jpg"]
    assert got["linked_by"] == "thumbdata_slot" and got["class"] == "exact"
    assert got["location"] == f"{sd}/DCIM/.thumbnails/.thumbdata3--1967290299!0x{3 * 10_000 + 13:08x}.jpg"


def test_slot_headers_are_read_only_at_the_start_of_a_slot():
    head = b"\x01" + struct.pack(">qi", 12345, 900)
    assert thumbdata.slot(head, 2 * 10_000 + 13) == {"slot_id": 2, "slot_magic": 12345}
    assert thumbdata.slot(head, 2 * 10_000 + 14) == {}  # not where a slot's JPEG starts
    assert thumbdata.slot(b"\x00" + head[1:], 13) == {}  # an empty slot's marker
    assert thumbdata.slot(b"\x01" + struct.pack(">qi", 1, 20_000), 13) == {}  # a length no slot holds
    gallery = mediastore.Gallery()
    gallery.add({"images": [[2, "/sdcard/a.jpg", None], [4, "/sdcard/b.jpg", 5]]})
    assert gallery.original("x/.thumbdata3-1!0x00004e2d.jpg", {"slot_id": 2, "slot_magic": 1}) == \
        ("/sdcard/a.jpg", "thumbdata_slot_unverified")  # the database keeps no magic
    assert gallery.original("y", {"slot_id": 4, "slot_magic": 6}) is None
    assert gallery.original("y", {"slot_id": 4, "slot_magic": 5}) == ("/sdcard/b.jpg", "thumbdata_slot")


@pytest.mark.skipif(not MKE2FS, reason="e2fsprogs (mke2fs) not installed")
def test_a_phones_userdata_image_links_its_thumbnails(store, tmp_path):
    """The realistic case: the database and the thumbnails inside an ext4 image of a phone's userdata partition,
    where `/storage/emulated/0` is `media/0`."""
    src = tmp_path / "src"
    thumbs = src / "media" / "0" / "DCIM" / ".thumbnails"
    thumbs.mkdir(parents=True)
    known = pic(620, size=(96, 72))
    (thumbs / "1500000000001.jpg").write_bytes(known)
    db = src / "data" / "com.android.providers.media" / "databases"
    db.mkdir(parents=True)
    media_db(db / "external.db", [(1, f"{PHONE}/DCIM/.thumbnails/1500000000001.jpg", 1)],
             [(1, f"{PHONE}/DCIM/Camera/IMG_0001.jpg")])
    ev = tmp_path / "ev"
    ev.mkdir()
    img = ev / "userdata.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run([MKE2FS, "-q", "-F", "-t", "ext4", "-b", "4096", "-d", str(src), str(img)], check=True,
                   capture_output=True)
    summary, rows = scan_links(store, ev, tmp_path / "out", known)
    assert summary["thumbnail_links"] == {"count": 1, "known": 1}
    got = rows[f"{PHONE}/DCIM/Camera/IMG_0001.jpg"]
    assert got["linked_by"] == "mediastore" and got["class"] == "exact"
    assert got["location"].startswith(f"{img}!") and got["location"].endswith("/DCIM/.thumbnails/1500000000001.jpg")


def test_device_roots_of_mediastore_databases():
    pkg = "com.android.providers.media/databases/external.db"
    assert mediastore.device_root(f"/ev/phone.E01!p2/data/{pkg}") == "/ev/phone.E01!p2/"  # a userdata partition
    assert mediastore.device_root(f"/cases/a/data/data/{pkg}") == "/cases/a/"  # a phone's files, as extracted
    assert mediastore.device_root("/x/data/user/0/com.google.android.providers.media.module/databases/"
                                  "external.db") == "/x/"
    assert mediastore.device_root(f"data/{pkg}") == ""
    assert mediastore.device_root("/cases/copied/external.db") == "/cases/"  # copied out alone


def test_two_phones_in_one_scan_link_each_thumbnail_to_its_own_phone(store, tmp_path):
    """Thumbnail names are the database's row numbers: two phones both have `.thumbnails/1.jpg`. Each is linked
    by its own phone's database; one that no scanned phone's database is its own is not linked when several
    phones name it (until 2026-12-07 the first database read linked every phone's)."""
    ev = tmp_path / "ev"
    known = pic(700, size=(96, 72))
    for phone, seed, camera in (("phone-a", 701, "IMG_A.jpg"), ("phone-b", 702, "IMG_B.jpg")):
        thumbs = ev / phone / "media" / "0" / "DCIM" / ".thumbnails"
        thumbs.mkdir(parents=True)
        (thumbs / "1.jpg").write_bytes(known if phone == "phone-b" else pic(seed, size=(96, 72)))
        db_dir = ev / phone / "data" / "data" / "com.android.providers.media" / "databases"
        db_dir.mkdir(parents=True)
        media_db(db_dir / "external.db", [(1, f"{PHONE}/DCIM/.thumbnails/1.jpg", 1)],
                 [(1, f"{PHONE}/DCIM/Camera/{camera}")])
    stray = ev / "sd-card" / "DCIM" / ".thumbnails"  # whose phone? both databases name a 1.jpg
    stray.mkdir(parents=True)
    (stray / "1.jpg").write_bytes(pic(703, size=(96, 72)))
    summary, rows = scan_links(store, ev, tmp_path / "out", known)
    assert summary["thumbnail_links"] == {"count": 2, "known": 1}
    a, b = rows[f"{PHONE}/DCIM/Camera/IMG_A.jpg"], rows[f"{PHONE}/DCIM/Camera/IMG_B.jpg"]
    assert a["location"] == f"{ev}/phone-a/media/0/DCIM/.thumbnails/1.jpg" and a["class"] == "unknown"
    assert b["location"] == f"{ev}/phone-b/media/0/DCIM/.thumbnails/1.jpg" and b["class"] == "exact"


def test_one_phone_links_its_thumbnails_in_another_image(tmp_path):
    """One device's database in the scan: its thumbnails are linked wherever they lie (an SD card's image)."""
    g = mediastore.Gallery()
    g.add({"links": [[f"{PHONE}/DCIM/.thumbnails/1.jpg", f"{PHONE}/DCIM/Camera/IMG_1.jpg", "image"]],
           "images": [[5, f"{PHONE}/DCIM/Camera/IMG_5.jpg", 42]]},
          "/ev/phone.E01!p2/data/com.android.providers.media/databases/external.db")
    assert g.original("/ev/sdcard.img!p1/DCIM/.thumbnails/1.jpg", {}) == (f"{PHONE}/DCIM/Camera/IMG_1.jpg",
                                                                          "mediastore")
    assert g.original("/ev/sdcard.img!p1/DCIM/.thumbnails/.thumbdata3!slot", {"slot_id": 5, "slot_magic": 42}) == \
        (f"{PHONE}/DCIM/Camera/IMG_5.jpg", "thumbdata_slot")
    g.add({"links": [[f"{PHONE}/DCIM/.thumbnails/1.jpg", f"{PHONE}/DCIM/Camera/OTHER.jpg", "image"]],
           "images": [[5, f"{PHONE}/DCIM/Camera/OTHER5.jpg", 42]]},
          "/ev/second.E01!p2/data/com.android.providers.media/databases/external.db")
    assert g.original("/ev/sdcard.img!p1/DCIM/.thumbnails/1.jpg", {}) is None  # two phones name it: whose?
    assert g.original("/ev/sdcard.img!p1/x!slot", {"slot_id": 5, "slot_magic": 42}) is None
    assert g.original("/ev/second.E01!p2/media/0/DCIM/.thumbnails/1.jpg", {}) == \
        (f"{PHONE}/DCIM/Camera/OTHER.jpg", "mediastore")
