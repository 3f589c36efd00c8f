"""Each run of a scan is recorded with it and reported (`vigie.ingest.runs`): an interrupted scan resumed says
so, and evidence that changed between the runs (a file gone, a picture rewritten under the same name) is
reported as changed, on SQLite and on PostgreSQL. (A SIGKILLed run: `test_scan_sigkill_containers.py`.)"""

from __future__ import annotations

import json
from types import SimpleNamespace

from test_evidence_formats import pic
from test_scan_resume_walk import evidence

from vigie.ingest.containers import iter_items
from vigie.ingest.runs import MAX_RUNS, Run, summarize
from vigie.ingest.scan import run_scan
from vigie.settings import Settings
from vigie.store import Store

from test_cli_hash import vigie


def _interrupted(store, ev, out, case, before):
    """A scan of `ev` stopped right after the row of the location ending with `before`."""
    whole = [it.location for it in iter_items([str(ev)], store.settings)]
    stop = whole.index(next(loc for loc in whole if loc.endswith(before))) + 1
    got = run_scan(store, store.settings, [str(ev)], str(out), workers=1, case=case, stop_after=stop)
    assert got["status"] == "interrupted"
    return stop


def _summary(out):
    return json.loads((out / "summary.json").read_text())


def test_a_resumed_scan_reports_both_runs(store, tmp_path):
    ev, out = evidence(tmp_path), tmp_path / "out"
    stop = _interrupted(store, ev, out, "runs", "e.zip")
    run_scan(store, store.settings, [str(ev)], str(out), workers=1, case="runs")
    s = _summary(out)
    first, second = s["runs"]
    assert (first["status"], first["walk"], first["rows_before"], first["rows_after"]) == \
        ("interrupted", "fresh", 0, stop)
    assert (second["status"], second["walk"], second["rows_before"]) == ("done", "taken_up", stop)
    assert second["rows_after"] == s["counts"]["locations"] and "changed" not in second
    assert s["evidence_changed"] is False and s["runs_dropped"] == 0
    page = (out / "report.html").read_text()
    assert "Runs: 2" in page and "evidence changed" not in page


def test_a_scan_done_in_one_run_shows_no_runs_table(store, tmp_path):
    ev, out = evidence(tmp_path), tmp_path / "out"
    s = run_scan(store, store.settings, [str(ev)], str(out), workers=1, case="one")
    assert [r["status"] for r in s["runs"]] == ["done"] and s["evidence_changed"] is False
    assert "Runs:" not in (out / "report.html").read_text()


def test_a_picture_rewritten_before_the_resume_point_is_reported_changed(store, tmp_path):
    ev, out = evidence(tmp_path), tmp_path / "out"
    _interrupted(store, ev, out, "rewritten", "p3.jpg")
    old = (ev / "pics" / "p1.jpg").stat().st_size
    new = pic(99, size=(300, 200))
    assert len(new) != old
    (ev / "pics" / "p1.jpg").write_bytes(new)  # the same name, other content: the walk still gives the rows
    run_scan(store, store.settings, [str(ev)], str(out), workers=1, case="rewritten")
    s = _summary(out)
    second = s["runs"][1]
    assert second["walk"] == "taken_up" and second["changed"] == 1
    got = second["changed_locations"]
    assert [{k: c[k] for k in ("location", "stored_size", "size_now")} for c in got] == \
        [{"location": f"{ev}/pics/p1.jpg", "stored_size": old, "size_now": len(new)}]
    assert got[0]["mtime_now"] == int((ev / "pics" / "p1.jpg").stat().st_mtime)  # times listed beside the sizes
    assert s["evidence_changed"] is True
    assert "The evidence changed between the runs" in (out / "report.html").read_text()


def test_a_picture_rewritten_with_the_same_size_is_reported_changed_by_its_time(store, tmp_path):
    """The same size, other content, a later modification time: sizes alone (until 2026-12-07) did not see it.
    Before the resume point (walk taken up) and, with a file gone before it, when the walk is taken again."""
    import os

    for case, gone in (("same-size", None), ("same-size-again", "b.tar.gz")):
        ev, out = evidence(tmp_path / case), tmp_path / case / "out"
        _interrupted(store, ev, out, case, "p3.jpg")
        target = ev / "pics" / "p1.jpg"
        data = bytearray(target.read_bytes())
        data[-3] ^= 0xFF  # other content, the same size
        st = target.stat()
        target.write_bytes(bytes(data))
        os.utime(target, (st.st_atime, st.st_mtime + 3600))  # edited an hour later
        untouched = ev / "pics" / "p2.jpg"
        os.utime(untouched, (untouched.stat().st_atime + 60, untouched.stat().st_mtime))  # read, not written
        if gone:
            (ev / gone).unlink()
        run_scan(store, store.settings, [str(ev)], str(out), workers=1, case=case)
        s = _summary(out)
        second = s["runs"][1]
        assert second["walk"] == ("walked_again" if gone else "taken_up")
        assert second["changed"] == 1 and s["evidence_changed"] is True
        (c,) = second["changed_locations"]
        assert c["location"] == f"{target}" and c["stored_size"] == c["size_now"] == len(data)
        assert c["mtime_now"] - c["stored_mtime"] == 3600


def test_evidence_walked_again_reports_why_and_what_changed(store, tmp_path):
    ev, out = evidence(tmp_path), tmp_path / "out"
    _interrupted(store, ev, out, "gone", "p3.jpg")
    (ev / "b.tar.gz").unlink()  # gone before the resume point: the stored rows are no longer the walk's
    old = (ev / "pics" / "p2.jpg").stat().st_size
    (ev / "pics" / "p2.jpg").write_bytes(pic(98, size=(310, 210)))
    run_scan(store, store.settings, [str(ev)], str(out), workers=1, case="gone")
    s = _summary(out)
    second = s["runs"][1]
    assert second["walk"] == "walked_again" and "b.tar.gz" in second["reason"]
    assert second["status"] == "done" and s["evidence_changed"] is True
    assert [c["location"] for c in second["changed_locations"]] == [f"{ev}/pics/p2.jpg"]
    assert second["changed_locations"][0]["stored_size"] == old
    page = (out / "report.html").read_text()
    assert "walked_again" in page and "The evidence changed between the runs" in page


def test_a_run_left_without_an_end_is_marked_killed_and_runs_stay_bounded():
    scan = SimpleNamespace(meta={"banks": None})
    first = Run(0)
    first.begin(scan)  # never ended: killed
    for n in range(MAX_RUNS + 4):
        r = Run(n + 1)
        r.entry["started_at"] = f"t{n}"  # distinct, as real runs' start times are
        r.begin(scan)
        r.end(scan, "interrupted", n + 2)
    runs = scan.meta["runs"]
    assert len(runs) == MAX_RUNS and scan.meta["runs_dropped"] == 5
    assert runs[0]["status"] == "killed" and runs[0]["walk"] == "fresh"
    assert runs[-1]["rows_after"] == MAX_RUNS + 5 and scan.meta["banks"] is None
    assert summarize(scan.meta)["evidence_changed"] is False


def test_a_walk_taken_again_keeps_the_second_item_of_a_shared_location(store, tmp_path):
    """`a` (a zip holding b.jpg) beside a file named `a!b.jpg`: both are walked to `a!b.jpg`. Stopped after the
    member, resumed on evidence that changed before it: the file is the second occurrence, stored as `#dup2`, and
    not skipped because the member's row exists (it was, losing the file)."""
    ev, out = evidence(tmp_path), tmp_path / "out"
    _interrupted(store, ev, out, "shared", "a!note.txt")
    (ev / "0-added.jpg").write_bytes(pic(97))  # before everything: the walk no longer gives the stored rows
    run_scan(store, store.settings, [str(ev)], str(out), workers=1, case="shared")
    assert _summary(out)["runs"][1]["walk"] == "walked_again"
    whole = tmp_path / "whole"
    run_scan(store, store.settings, [str(ev)], str(whole), workers=1, case="uninterrupted")

    def rows(folder):
        lines = (folder / "files.csv").read_text().splitlines()[1:]
        return sorted((ln.split(",")[0], ln.split(",")[5]) for ln in lines)  # location, SHA-256

    assert rows(out) == rows(whole)
    assert (f"{ev}/a!b.jpg#dup2",) == tuple(loc for loc, _ in rows(out) if loc.endswith("#dup2"))


def test_the_command_says_a_scan_was_resumed_and_warns_when_the_evidence_changed(tmp_path):
    ev, out, data = evidence(tmp_path), tmp_path / "out", tmp_path / "data"
    store = Store.open(Settings(data_dir=data))
    try:
        whole = [it.location for it in iter_items([str(ev)], store.settings)]
        stop = whole.index(next(loc for loc in whole if loc.endswith("p3.jpg"))) + 1
        assert run_scan(store, store.settings, [str(ev)], str(out), workers=1, stop_after=stop)["status"] == \
            "interrupted"
    finally:
        store.close()
    (ev / "pics" / "p1.jpg").write_bytes(pic(99, size=(300, 200)))
    r = vigie("scan", str(ev), "--out", str(out), "--data-dir", str(data), "--workers", "1")
    assert r.returncode == 0, r.stderr
    assert "Resumed: 2 runs (interrupted, done)." in r.stdout
    assert "the evidence changed between the runs of this scan" in r.stderr
    again = vigie("scan", str(ev), "--out", str(out), "--data-dir", str(data), "--workers", "1", "--json")
    got = json.loads(again.stdout)
    assert [x["status"] for x in got["runs"]] == ["interrupted", "done", "done"] and got["evidence_changed"]
