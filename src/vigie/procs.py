"""Vigie's forkserver: the process its hashing workers fork from, and when a scan starts it.

Kept apart from `vigie.batch` and `vigie.ingest.scan` (which import the hashing code, numpy, PIL, SQLAlchemy)
so that `vigie scan` can start its forkserver as the command starts, before it imports any of that: the
forkserver's preload (the hashing code imported, the numba kernels loaded: about a second of one core) then
runs on the other core while the command imports its own code and opens the store, instead of after. The
workers are ready when the scan starts (`early_scan_forkserver`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from vigie.settings import Settings


def forkserver_context(*preload: str):
    """This process's forkserver context, its server (when not running yet) set to preload `vigie.forked` (its
    processes do not run this process's main script again) and `preload` (modules that import the hashing code
    and load its kernels once, so that each process forks ready) and started now, so that Dask, which sets a
    list of its own on first use, does not replace it. A forkserver runs once per process: later calls get the
    running one, whatever it preloaded (its processes then load what they need themselves)."""
    import multiprocessing as mp
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:
        ctx.set_forkserver_preload(["vigie.forked", *preload])
        forkserver.ensure_running()
    return ctx


def variants_on(settings: Settings) -> bool:
    """Whether a scan's workers compute any query variant (not `vigie scan --fast`)."""
    return any(getattr(settings, k) for k in ("dihedral", "variant_unbordered", "variant_region"))


def scan_forkserver(settings: Settings):
    """The forkserver for a scan's workers, started now if it is not running: preloading the variants' kernels
    too (`vigie.ingest.preload`), or plain PDQ's only (`preload_plain`, `--fast`)."""
    return forkserver_context("vigie.ingest.preload" if variants_on(settings) else "vigie.ingest.preload_plain")


def early_scan_forkserver(settings: Settings, workers: int | None, cluster: str | None) -> None:
    """Start the forkserver a scan of these settings will use, now: for a local Dask cluster (`local:N`) the one
    its workers fork from, with Dask preloaded too (`vigie.ingest.distributed.open_client`); none for a remote
    cluster or a one-worker scan hashed in its own process (`hash_in_process`); else the pool's
    (`scan_forkserver`: `vigie.ingest.scan.run_scan` makes the same choice)."""
    if cluster:
        spec = cluster.strip()
        if spec == "local" or spec.startswith("local:"):  # as vigie.ingest.distributed.parse_cluster reads it
            forkserver_context("vigie.ingest.preload", "distributed")
        return
    n = workers if workers else settings.effective_workers
    if n <= 1 and settings.hash_in_process:
        return
    scan_forkserver(settings)
