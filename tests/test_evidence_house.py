"""The house: the scanner's modules import each other in one direction only, lazy imports included.

Container kinds (archives, disk images) implement one interface (`vigie.ingest.members`) and
never import the walker that wires them (`vigie.ingest.containers`); the scan and its Dask
runner share `vigie.ingest.process`; the PDQ engines share `vigie.signals.pdq_types`.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = ["vigie.ingest." + m for m in ("archives", "containers", "diskimage", "distributed", "folders", "members",
                                         "names", "process", "reopen", "scan")] + \
          ["vigie.signals.pdq", "vigie.signals.pdq_numba", "vigie.signals.pdq_types", "vigie.signals.variants",
           "vigie.report.scan_report", "vigie.report.html", "vigie.report.clusters"]


def imports(module: str) -> set[str]:
    """Every module of the list that `module` imports, at the top or inside a function."""
    tree = ast.parse((SRC / (module.replace(".", "/") + ".py")).read_text())
    out = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        out |= {n for n in names if n in MODULES and n != module}
    return out


def test_no_import_circles():
    graph = {m: imports(m) for m in MODULES}
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            assert state.get(n) != 1, "import circle: " + " -> ".join(path + [m, n])
            if n not in state:
                visit(n, path + [m])
        state[m] = 2

    for m in MODULES:
        if m not in state:
            visit(m, [])
    assert "vigie.ingest.containers" not in graph["vigie.ingest.archives"] | graph["vigie.ingest.diskimage"]
    assert "vigie.ingest.scan" not in graph["vigie.ingest.distributed"]
    assert "vigie.signals.pdq" not in graph["vigie.signals.pdq_numba"]


def test_every_container_kind_has_the_interface():
    import inspect

    from vigie.ingest.containers import KINDS

    for kind, fn in KINDS.items():
        assert list(inspect.signature(fn).parameters) == ["item", "fobj", "size", "kind", "depth", "ctx"], kind
