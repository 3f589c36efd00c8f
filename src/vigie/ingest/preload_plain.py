"""The forkserver's preload for scans without query variants (`vigie scan --fast`): as `vigie.ingest.preload`, but
only plain PDQ's kernels are loaded, with --fast's reduced JPEG decoding; the variants' twenty-odd kernels,
which such workers never call, are not (about a third of the preload's time, on the critical path of a scan's
start). A later scan of the same process with variants on gets this forkserver too (one per process): its
workers then load those kernels themselves, once each.
"""

from __future__ import annotations

from vigie.ingest.warming import warm

try:
    warm(variants=False)
except Exception:  # noqa: BLE001 - a worker that was not warmed still works: it loads what it needs
    pass
