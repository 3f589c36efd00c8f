"""Preloaded first by Vigie's forkserver (`vigie.procs.forkserver_context`): the processes it forks do not run
the parent's main script again.

multiprocessing prepares every process it starts by running the parent's `__main__` again under the name
`__mp_main__` (its file, or its module for `python -m module`), so that objects defined there can be unpickled;
a forkserver that preloaded `__main__` spares its children that, but that preload has never worked before
CPython 3.13.8 (gh-126631: the forkserver is never given the path). For `vigie scan` the main script is the
`vigie` command, which imports the command line; for a script that calls the library it is whatever that script
imports. Each worker paid it after its fork, before its first file: 0.1-0.2 s of CPU for `vigie`, 0.2-0.3 s of
wall for `bench/scan_bench.py`, on the critical path of a scan's start where two workers share two cores.

Vigie's processes need nothing from `__main__`: their tasks and arguments are Vigie's own functions and classes
(by reference), and Dask pickles what a caller defines in `__main__` by value. So, in the forkserver and the
processes it forks only, preparing the main module does nothing, as the standard library already does for the
main module of a package (`python -m vigie`).
"""

from __future__ import annotations

from multiprocessing import spawn


def _main_not_run(_name_or_path: str) -> None:
    """`spawn._fixup_main_from_path` and `_fixup_main_from_name` in this forkserver: the main module is left as
    the forkserver's own."""


spawn._fixup_main_from_path = _main_not_run
spawn._fixup_main_from_name = _main_not_run
