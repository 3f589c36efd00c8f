"""Android Gallery thumbnails (`DCIM/.thumbnails/<n>.jpg`) are linked to the pictures and videos they were made
of through the MediaStore database (`external.db`) found in the same scan (`vigie.ingest.mediastore`), in
whatever order the walk meets them; a hostile or foreign database gives an error in its row, never a crash."""

from __future__ import annotations

import sqlite3

from test_evidence_formats import pic
from test_scan_thumbnail_links import scan_links

from vigie.ingest import mediastore

PHONE = "/storage/emulated/0"


def media_db(path, thumbs: list[tuple[int, str, int]], files: list[tuple[int, str]], videos=()) -> bytes:
    """A MediaStore database shaped as Android's (the columns read; the rest of its schema left out)."""
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE files (_id INTEGER PRIMARY KEY AUTOINCREMENT, _data TEXT UNIQUE COLLATE NOCASE,
                            _size INTEGER, media_type INTEGER, date_modified INTEGER);
        CREATE TABLE thumbnails (_id INTEGER PRIMARY KEY, _data TEXT, image_id INTEGER, kind INTEGER,
                                 width INTEGER, height INTEGER);
        CREATE TABLE videothumbnails (_id INTEGER PRIMARY KEY, _data TEXT, video_id INTEGER, kind INTEGER,
                                      width INTEGER, height INTEGER);
        CREATE VIEW images AS SELECT * FROM files WHERE media_type = 1;
    """)
    con.executemany("INSERT INTO files (_id, _data, media_type) VALUES (?, ?, 1)", files)
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
                   "count": 2}
    assert mediastore.key(f"{PHONE}/DCIM/.thumbnails/1500000000001.JPG") == ".thumbnails/1500000000001.jpg"
    assert mediastore.key("/case/phone.img!p3/media/0/DCIM/.thumbnails/1500000000001.jpg") == \
        ".thumbnails/1500000000001.jpg"
    assert mediastore.key(f"{PHONE}/DCIM/Camera/IMG_0007.jpg") is None
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
