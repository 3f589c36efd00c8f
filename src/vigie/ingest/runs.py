"""The runs of a scan, kept with it for the report: when each run started and ended, how many rows were
stored before it, how it took up the walk, and what it found changed in the evidence.

A scan of a 15 TB case is stopped and resumed (a kill, a reboot, the evidence unplugged), and the same
command goes on where it stopped. An examiner must be able to say so in court: a report that reads like
one uninterrupted run hides that the evidence could have changed between runs. So each run leaves an
entry in `Scan.meta["runs"]`, written when it starts (a run killed later keeps it, with no end: the next
run marks it `killed`) and completed when it ends. `walk` says how a resumed run took up the walk:

* `fresh`: the first run;
* `taken_up`: the evidence gave the stored locations in order (`vigie.ingest.resume`);
* `walked_again`: it did not (a file gone or added before the resume point, or a Vigie version that walks
  otherwise): every item was walked again and those stored skipped by location; `reason` says where.

`changed` counts the pictures and videos stored by an earlier run whose size or modification time is not
what the walk finds now; the first `MAX_CHANGED` are listed, with both sizes and, where the file system or
the archive gives them, both times. Their rows are the earlier run's: the report says the evidence changed,
it does not hash those files again (a resume that read everything again would not be a resume). A file
rewritten with the same size within the same second as its stored time (times are kept to the second), or
with its time set back, is not seen here (the acquisition hash of an evidence image is: `source_hashes`).
Times were compared from 2026-12-07; sizes alone before.

The report's summary carries the runs and `evidence_changed` (`summarize`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigie import __version__

if TYPE_CHECKING:  # pragma: no cover
    from vigie.store.models import Scan

#: Runs kept per scan: the first and the latest ones; the count of those dropped between is kept.
MAX_RUNS = 100
#: Changed locations listed per run (all are counted).
MAX_CHANGED = 50


class Run:
    """This run's entry, written to the scan's meta when it starts and when it ends."""

    def __init__(self, rows_before: int) -> None:
        from vigie.store.models import utcnow

        self.entry: dict = {"started_at": utcnow().isoformat(), "rows_before": rows_before,
                            "tool_version": __version__, "walk": "fresh" if rows_before == 0 else "taken_up"}
        self.changed = 0
        self.changed_locations: list[dict] = []

    def walked_again(self, reason: str) -> None:
        self.entry["walk"] = "walked_again"
        self.entry["reason"] = reason[:500]

    def item_changed(self, location: str, stored: int | None, walked: int | None, stored_mtime=None,
                     mtime_now=None) -> None:
        """A location stored by an earlier run whose size or modification time the walk now finds otherwise
        (`vigie.ingest.resume.note_change`); the times are listed when both are known."""
        self.changed += 1
        if len(self.changed_locations) < MAX_CHANGED:
            entry = {"location": location, "stored_size": stored, "size_now": walked}
            if None not in (stored_mtime, mtime_now):
                entry.update(stored_mtime=stored_mtime, mtime_now=mtime_now)
            self.changed_locations.append(entry)

    def begin(self, scan: Scan) -> None:
        """Record the run's start on the scan (in the caller's transaction); an earlier run left without an end
        was killed."""
        runs = [dict(r) for r in (scan.meta or {}).get("runs", [])]
        for r in runs:
            if "status" not in r:
                r["status"] = "killed"  # started, never ended: killed (SIGKILL, power) or crashed hard
        _save(scan, [*runs, self.entry])

    def end(self, scan: Scan, status: str, rows_after: int) -> None:
        """Complete the run's entry on the scan (in the caller's transaction, with the scan's own status): its
        end, status, rows stored after it and what it found changed."""
        from vigie.store.models import utcnow

        self.entry.update(ended_at=utcnow().isoformat(), status=status, rows_after=rows_after)
        self.save(scan)

    def save(self, scan: Scan) -> None:
        """Write the entry as it stands (how the walk was taken up, what changed) on the scan."""
        if self.changed:
            self.entry["changed"] = self.changed
            self.entry["changed_locations"] = self.changed_locations
        runs = [dict(r) for r in (scan.meta or {}).get("runs", [])]
        for i in range(len(runs) - 1, -1, -1):
            if runs[i].get("started_at") == self.entry["started_at"]:
                runs[i] = self.entry
                break
        else:
            runs.append(self.entry)
        _save(scan, runs)


def _save(scan: Scan, runs: list[dict]) -> None:
    meta = dict(scan.meta or {})
    if len(runs) > MAX_RUNS:  # keep the first run and the latest ones
        meta["runs_dropped"] = meta.get("runs_dropped", 0) + len(runs) - MAX_RUNS
        runs = [runs[0], *runs[len(runs) - MAX_RUNS + 1:]]
    meta["runs"] = runs
    scan.meta = meta  # a new object: SQLAlchemy's JSON column sees the change


def summarize(meta: dict | None) -> dict:
    """The report's view of a scan's runs: the list, the count dropped, whether the evidence changed."""
    runs = list((meta or {}).get("runs", []))
    return {"runs": runs, "runs_dropped": (meta or {}).get("runs_dropped", 0),
            "evidence_changed": any(r.get("walk") == "walked_again" or r.get("changed") for r in runs)}
