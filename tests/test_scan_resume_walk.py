"""A resumed scan takes up the walk where its stored rows end without opening again the containers it had
finished (`vigie.ingest.resume`): the same items as walking everything and skipping the first `done`, for every
resume point, and the containers wholly before it never opened; evidence that changed falls back to walking
everything, as before."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import select
from test_evidence_formats import MKFS, MTOOLS, fat_disk, pic
from test_scan import targz_bytes, zip_bytes

from vigie.ingest import containers, resume
from vigie.ingest.containers import iter_items
from vigie.ingest.scan import run_scan
from vigie.settings import Settings
from vigie.store.models import ScanFile


def evidence(tmp_path):
    ev = tmp_path / "ev"
    (ev / "pics").mkdir(parents=True)
    for i in range(4):
        (ev / "pics" / f"p{i}.jpg").write_bytes(pic(10 + i))
    inner = zip_bytes({"deep/c.jpg": pic(20), "deep/d.png": pic(21, "PNG")})
    (ev / "a").write_bytes(zip_bytes({"b.jpg": pic(22), "inner.zip": inner, "note.txt": b"text"}))
    (ev / "a!b.jpg").write_bytes(pic(23))  # named like a member of the container beside it: the ambiguous case
    (ev / "b.tar.gz").write_bytes(targz_bytes({"x/y.jpg": pic(24), "x/z.jpg": pic(25)}))
    os.symlink("/nonexistent/target.jpg", ev / "c-dangling-link.jpg")
    if MKFS and MTOOLS:
        disk, _, _ = fat_disk(tmp_path)
        (ev / "d.img").write_bytes(disk)
    (ev / "e.zip").write_bytes(zip_bytes({"last.jpg": pic(26)}))
    (ev / "z.jpg").write_bytes(pic(27))
    return ev


@pytest.fixture
def opened(monkeypatch):
    """The entries whose bytes were opened (containers listed, plain files sniffed), by location."""
    seen: list[str] = []
    real = containers.from_path

    def watch(item, ctx):
        seen.append(item.location)
        return real(item, ctx)

    monkeypatch.setattr(containers, "from_path", watch)
    return seen


def test_every_resume_point_gives_the_same_items_as_walking_everything(tmp_path, opened):
    ev = evidence(tmp_path)
    settings = Settings(data_dir=tmp_path / "data")
    full = [it.location for it in iter_items([str(ev)], settings)]
    entries = [e.location for e in containers.iter_entries([str(ev)])]
    assert len(full) > len(entries) + 8  # containers with members, nested
    own = {loc: full.index(loc) for loc in entries}  # each entry's own row
    for k in range(len(full) + 1):
        opened.clear()
        got = [it.location for it in resume.resumed_items([str(ev)], settings, k, iter(full[:k]))]
        assert got == full[k:], k
        for i, loc in enumerate(entries[:-1]):
            nxt = entries[i + 1]
            if own[nxt] < k and not nxt.startswith(loc + "!"):
                assert loc not in opened, (k, loc)  # wholly before the resume point: never opened again
    opened.clear()
    assert list(resume.resumed_items([str(ev)], settings, len(full), iter(full))) == []
    assert len(opened) <= 2  # the last entry, and the ambiguous container at most


def test_evidence_that_changed_before_the_resume_point_is_walked_again_in_full(tmp_path):
    ev = evidence(tmp_path)
    settings = Settings(data_dir=tmp_path / "data")
    full = [it.location for it in iter_items([str(ev)], settings)]
    k = full.index(next(loc for loc in full if loc.endswith("e.zip")))
    (ev / "b.tar.gz").unlink()  # an entry before the resume point is gone
    with pytest.raises(resume.Diverged):
        resume.resumed_items([str(ev)], settings, k, iter(full[:k]))
    with pytest.raises(resume.Diverged):  # fewer rows stored than the scan counted
        resume.resumed_items([str(ev)], settings, k, iter(full[:3]))


def test_a_resumed_scan_opens_only_what_follows_its_stored_rows(store, tmp_path, opened):
    ev = evidence(tmp_path)
    settings = store.settings
    out = tmp_path / "out"
    whole = [it.location for it in iter_items([str(ev)], settings)]
    stop = whole.index(next(loc for loc in whole if loc.endswith("e.zip"))) + 1  # after e.zip, before its member
    got = run_scan(store, settings, [str(ev)], str(out), workers=1, case="resume", stop_after=stop)
    assert got["status"] == "interrupted"
    opened.clear()
    done = run_scan(store, settings, [str(ev)], str(out), workers=1, case="resume")
    assert done["status"] != "interrupted"
    assert not [loc for loc in opened if loc.endswith(("b.tar.gz", "d.img"))], opened
    assert f"{ev}/e.zip" in opened  # where the stored rows end: opened, its finished items skipped
    with store.sessions() as s:
        rows = [r.location for r in s.scalars(select(ScanFile).order_by(ScanFile.seq))]
    dup = f"{ev}/a!b.jpg"  # the member b.jpg of `a`, then the file named a!b.jpg: the second is suffixed
    assert rows == [*whole[:whole.index(dup, whole.index(dup) + 1)], f"{dup}#dup2",
                    *whole[whole.index(dup, whole.index(dup) + 1) + 1:]]  # every item once, in walk order


def test_a_resumed_scan_of_changed_evidence_still_finishes(store, tmp_path):
    ev = evidence(tmp_path)
    settings = store.settings
    out = tmp_path / "out"
    whole = [it.location for it in iter_items([str(ev)], settings)]
    run_scan(store, settings, [str(ev)], str(out), workers=1, case="changed", stop_after=len(whole) - 3)
    (ev / "b.tar.gz").unlink()  # gone before the resume point: the walk no longer gives the stored rows
    (ev / "pics" / "p9.jpg").write_bytes(pic(40))  # and a file added after it
    done = run_scan(store, settings, [str(ev)], str(out), workers=1, case="changed")
    assert done["status"] != "interrupted"
    now = [it.location for it in iter_items([str(ev)], settings)]
    with store.sessions() as s:
        rows = [r.location for r in s.scalars(select(ScanFile).order_by(ScanFile.seq))]
    assert set(rows) == set(whole[:len(whole) - 3]) | set(now) | {f"{ev}/a!b.jpg#dup2"}
    assert len(rows) == len(set(rows))  # nothing skipped short, nothing stored twice
    assert rows[-1] == now[-1]


def test_items_walked_to_the_same_location_are_all_kept_and_all_reviewable(store, tmp_path, media_key):
    """Names may hold `!`, the separator of locations: a container `a` with a member `b.jpg` beside a file
    named `a!b.jpg`, and a zip holding both a member `x!y` and a zip `x` holding `y`. Each pair has one location;
    the scan used to end there (its unique location refused the batch). Both stores."""
    from vigie.ingest.scan import scan_key
    from vigie.review import media as rmedia
    from vigie.review.queue import enqueue_scan
    from vigie.store.models import Scan

    ev = tmp_path / "ev"
    ev.mkdir()
    pics = {n: pic(60 + n) for n in range(4)}
    (ev / "a").write_bytes(zip_bytes({"b.jpg": pics[0]}))
    (ev / "a!b.jpg").write_bytes(pics[1])
    (ev / "z.zip").write_bytes(zip_bytes({"x": zip_bytes({"y": pics[2]}), "x!y": pics[3]}))
    settings = store.settings
    run_scan(store, settings, [str(ev)], str(tmp_path / "out"), workers=1)
    with store.sessions() as s:
        scan_id = s.scalar(select(Scan.id).where(Scan.key == scan_key([str(ev)], None)))
        rows = list(s.scalars(select(ScanFile).where(ScanFile.scan_id == scan_id).order_by(ScanFile.seq)))
    by_sha = {r.sha256: r for r in rows if r.sha256}
    for n, data in pics.items():
        import hashlib

        r = by_sha[hashlib.sha256(data).hexdigest()]
        assert r.klass == "unknown", (n, r.location)
    dups = [r for r in rows if "duplicate_location" in r.flags]
    assert sorted(r.detail["walked_location"] for r in dups) == [f"{ev}/a!b.jpg", f"{ev}/z.zip!x!y"]
    assert all(r.location == r.detail["walked_location"] + "#dup2" for r in dups)
    assert len({r.location for r in rows}) == len(rows)
    rep = enqueue_scan(store, settings, scan_id)  # the default reader: every reading of each location
    assert rep["media_missing"] == 0
    for data in pics.values():
        import hashlib

        assert rmedia.has_media(store, hashlib.sha256(data).hexdigest(), "original")


def test_sizes_are_compared_for_the_members_of_the_entry_where_the_rows_end(tmp_path):
    ev = evidence(tmp_path)
    settings = Settings(data_dir=tmp_path / "data")
    whole = list(iter_items([str(ev)], settings))
    member = next(it.location for it in whole if it.location.startswith(f"{ev}/b.tar.gz!") and
                  it.location.endswith("y.jpg"))
    done = [it.location for it in whole].index(member) + 1  # inside b.tar.gz, opened where the rows end
    stored = [(it.location, it.size) for it in whole[:done]]
    stored[done - 1] = (stored[done - 1][0], whole[done - 1].size + 1)  # the member's size when it was stored
    got = []
    rest = resume.resumed_items([str(ev)], settings, done, stored, lambda *c: got.append(c))
    assert [it.location for it in rest] == [it.location for it in whole[done:]]
    assert [c[:3] for c in got] == [(member, whole[done - 1].size + 1, whole[done - 1].size)]
    # The same size, another time (a tar member's seconds): changed too; a time of another kind is not compared.
    mtime = whole[done - 1].meta["mtime"]
    assert isinstance(mtime, int)
    for stored_mtime, want in ((mtime - 60, [(member, whole[done - 1].size, whole[done - 1].size, mtime - 60, mtime)]),
                               (mtime, []), ("2026-01-01T00:00:00", [])):
        timed = [(loc, size, None) for loc, size in stored]
        timed[done - 1] = (member, whole[done - 1].size, stored_mtime)
        got.clear()
        list(resume.resumed_items([str(ev)], settings, done, timed, lambda *c: got.append(c)))
        assert got == want
