"""Android's MediaStore database (`external.db`): which picture or video each thumbnail in `DCIM/.thumbnails`
was made of.

The Gallery keeps a JPEG thumbnail of every picture it has shown in `DCIM/.thumbnails/<n>.jpg`, and keeps it
after the picture is deleted; the thumbnail's file says nothing of its original. The media provider's
database (`/data/data/com.android.providers.media/databases/external.db`, or
`com.google.android.providers.media.module` from Android 10) does: its `thumbnails` table gives each
thumbnail's path (`_data`) and its picture's id (`image_id`), its `videothumbnails` table a video's
(`video_id`), and its `files` table (`images` on old versions) each id's path. So a thumbnail that matches a
known picture says where on the phone that picture was, even when it is gone.

The scan reads such a database when it meets it (by its name, `external.db`, and SQLite's header), in the
worker, from the bytes it already holds: the links go into the row's `detail["mediastore"]` (at most
`MAX_LINKS`, with the count of all), and the report joins them with the thumbnails found in the scan by the
end of their paths (`.thumbnails/<name>`, the folder being the one the database names: `thumbnail_links.csv`,
`linked_by` `mediastore`), on the database's own device when the scan holds several (`Gallery`).

It also keeps each picture's id, path and `mini_thumb_magic` (`images`, at most `MAX_LINKS`): the thumbnails
of the Gallery's `.thumbdata` caches are stored in slots numbered by the picture's id, each with that magic
(`vigie.ingest.thumbdata.slot`), so the report names the picture of each such thumbnail too (`linked_by`
`thumbdata_slot` when the magic matches the database's; not linked when it differs: the slot is stale).

The database is evidence, so hostile: it is opened in memory (`deserialize`, never a file of its own), read
only, with `trusted_schema` off (no function called from a view or trigger the file defines), only tables
read (a view named `thumbnails` is not), and a budget of SQLite steps (`MAX_STEPS`); a file that is not what
it claims gives an error in `detail["mediastore"]["error"]`, never a crash of the scan.
"""

from __future__ import annotations

import os
import re
import sqlite3

#: Links kept per database (each about 100 bytes in the row): a phone's Gallery holds thousands.
MAX_LINKS = 20_000
#: SQLite virtual-machine steps, in thousands, before a query is given up (a crafted file cannot hold the worker).
MAX_STEPS = 50_000
#: The largest database read (MediaStore databases are a few MB; a larger one is not read).
MAX_BYTES = 256 * 1024 * 1024

_NAME = re.compile(r"external(?:[-_.][^/]*)?\.db$", re.IGNORECASE)
_HEADER = b"SQLite format 3\x00"
#: (thumbnail table, its column naming the original, kind)
_THUMBS = (("thumbnails", "image_id", "image"), ("videothumbnails", "video_id", "video"))


def is_mediastore(location: str) -> bool:
    """Whether the item at `location` is named as MediaStore's database (`external.db`)."""
    return _NAME.fullmatch(os.path.basename(location)) is not None


def read(data: bytes) -> dict:
    """The thumbnails' links of a MediaStore database: ``{"links": [[thumbnail path, original path, kind], ...],
    "count": n}`` (`truncated` when over `MAX_LINKS`), or ``{"error": reason}``."""
    if not data.startswith(_HEADER):
        return {"error": "not a SQLite database"}
    if len(data) > MAX_BYTES:
        return {"error": f"{len(data):,} bytes is over the limit of {MAX_BYTES:,}"}
    con = sqlite3.connect(":memory:")
    steps = [0]

    def budget() -> int:
        steps[0] += 1
        return 1 if steps[0] > MAX_STEPS else 0  # non-zero: SQLite interrupts the statement

    try:
        con.execute("PRAGMA trusted_schema = OFF")
        con.deserialize(data)
        con.set_progress_handler(budget, 1000)
        for pragma in ("trusted_schema = OFF", "query_only = ON", "cell_size_check = ON"):
            con.execute(f"PRAGMA {pragma}")
        tables = {name.lower(): name for (name,) in
                  con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        files = tables.get("files") or tables.get("images")
        if files is None or not any(t in tables for t, _, _ in _THUMBS):
            return {"error": "no thumbnails and files tables: not a MediaStore database"}
        links: list[list[str]] = []
        count = 0
        for table, column, kind in _THUMBS:
            if table not in tables:
                continue
            q = (f"SELECT t._data, f._data FROM {_quoted(tables[table])} t JOIN {_quoted(files)} f "
                 f"ON f._id = t.{column} WHERE t._data IS NOT NULL AND f._data IS NOT NULL")
            for thumb, original in con.execute(q):
                count += 1
                if len(links) < MAX_LINKS and isinstance(thumb, str) and isinstance(original, str):
                    links.append([thumb[:1000], original[:1000], kind])
        out: dict = {"links": links, "count": count}
        if count > len(links):
            out["truncated"] = True
        out["images"] = _images(con, files)
        return out
    except (sqlite3.Error, OverflowError, MemoryError) as exc:
        return {"error": f"unreadable MediaStore database: {exc}"[:300]}
    finally:
        con.close()


def _images(con: sqlite3.Connection, files: str) -> list[list]:
    """`[id, path, mini_thumb_magic or None]` of the pictures (at most `MAX_LINKS`): what a thumbnail in a
    `.thumbdata` cache is joined on (`vigie.ingest.thumbdata.slot`: its slot is the picture's id, its magic the
    picture's `mini_thumb_magic` where the database keeps one)."""
    cols = {row[1].lower() for row in con.execute(f"PRAGMA table_info({_quoted(files)})")}
    magic = "mini_thumb_magic" if "mini_thumb_magic" in cols else "NULL"
    where = "WHERE media_type = 1" if "media_type" in cols else ""  # files: every file; 1 is a picture
    q = f"SELECT _id, _data, {magic} FROM {_quoted(files)} {where} LIMIT {MAX_LINKS}"
    return [[i, p[:1000], m if isinstance(m, int) else None] for i, p, m in con.execute(q)
            if isinstance(i, int) and isinstance(p, str)]


def key(path: str) -> str | None:
    """What a thumbnail is joined on: its folder's name and its own, lower-case (``.thumbnails/<name>``), from a
    path on the phone or a location in the scan (the phone's paths are not the evidence's: `/storage/emulated/0`
    is `media/0` on the userdata partition); None for a bare name."""
    parts = [p for p in re.split(r"[/\\!]", path) if p]
    if len(parts) < 2:
        return None
    return f"{parts[-2].lower()}/{parts[-1].lower()}"


def _quoted(name: str) -> str:
    """A table name from the file's own schema, quoted as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


#: Path segments between a device's root and the media provider's folder (`data/data/<package>`,
#: `data/user/0/<package>`; a userdata partition's own root holds `data/<package>` or `user/0/<package>`).
_ABOVE_PACKAGE = frozenset({"data", "user", "user_de"})


def device_root(location: str) -> str:
    """The part of a MediaStore database's location that its device's other files share: the location up to
    the folders above the media provider's package (`phone.E01!p2/` for `phone.E01!p2/data/com.android.
    providers.media/databases/external.db`, `/cases/a/` for `/cases/a/data/user/0/.../external.db`); the
    database's own folder's parent when no such package folder is named (a database copied out alone)."""
    parts = location.split("/")
    at = next((i for i, p in enumerate(parts) if "providers.media" in p), None)
    if at is None:
        return "/".join(parts[:-2]) + "/" if len(parts) > 2 else ""
    i = at
    while i > 0 and (parts[i - 1] in _ABOVE_PACKAGE or parts[i - 1].isdigit()):
        i -= 1
    return "/".join(parts[:i]) + "/" if i else ""


class Gallery:
    """The MediaStore links of a scan's databases, for its report: which picture each Gallery thumbnail (a
    `.thumbnails/<n>.jpg` file, or a `.thumbdata` cache's slot) was made of. At most `limit` links are held
    (hostile evidence: many large databases).

    Thumbnail names and picture ids are the database's row numbers (`1234.jpg`, slot 1234): two phones in one
    scan both have them. So each link is kept with its device's root (`device_root`), and a thumbnail is
    linked by the database of its own device (its location under that root; the first such database wins);
    by another only when a single device's databases name it (one phone whose media lie in another image, an
    SD card); never when several devices name it and none is its own (until 2026-12-07 the first database
    read won, whichever phone it came from)."""

    def __init__(self, limit: int = 500_000) -> None:
        self.thumbs: dict[str, list[tuple[str, str]]] = {}
        self.images: dict[int, list[tuple[str, str, int | None]]] = {}
        self.limit = limit
        self.held = 0

    def __bool__(self) -> bool:
        return bool(self.thumbs or self.images)

    def add(self, found: dict, location: str = "") -> None:
        """One database's `read` result; `location`: the database's own, in the scan (its device's root)."""
        root = device_root(location) if location else ""
        for thumb, original, *_ in found.get("links", []):
            k = key(thumb)
            if k is not None and self.held < self.limit:
                self._put(self.thumbs.setdefault(k, []), (root, original))
        for image_id, path, magic in found.get("images", []):
            if self.held < self.limit:
                self._put(self.images.setdefault(image_id, []), (root, path, magic))

    def _put(self, links: list, link: tuple) -> None:
        if not any(x[0] == link[0] for x in links):  # per device, the first database to name it
            links.append(link)
            self.held += 1

    @staticmethod
    def _of(links: list, location: str):
        """The link of the device `location` lies on; else the only device's; else None (ambiguous)."""
        own = [x for x in links if location.startswith(x[0])]
        if own:
            return max(own, key=lambda x: len(x[0]))  # the innermost root: a phone image inside a case folder
        return links[0] if len(links) == 1 else None

    def original(self, location: str, source: dict) -> tuple[str, str] | None:
        """The picture a thumbnail at `location` (its scan row's `detail.source`: `source`) was made of, and how
        it was linked (`mediastore`: a thumbnail file named in the database; `thumbdata_slot`: a `.thumbdata`
        slot whose magic is the picture's; `thumbdata_slot_unverified`: the database keeps no magic)."""
        k = key(location)
        link = self._of(self.thumbs[k], location) if k is not None and k in self.thumbs else None
        if link is not None:
            return link[1], "mediastore"
        image_id, magic = source.get("slot_id"), source.get("slot_magic")
        if image_id is None or image_id not in self.images:
            return None
        link = self._of(self.images[image_id], location)
        if link is None:
            return None
        _, path, known = link
        if known is None:
            return path, "thumbdata_slot_unverified"
        return (path, "thumbdata_slot") if known == magic else None  # another magic: a stale slot
