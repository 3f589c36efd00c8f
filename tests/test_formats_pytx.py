"""ThreatExchange lines against python-threatexchange itself.

`data/pytx/local_file.txt` was written by python-threatexchange's own code (see `data/pytx/make_fixture.py`):
PDQ, video MD5 and vPDQ lines as its `threatexchange hash` prints them and its local-file exchange reads them.
Vigie must read that file and write it back byte for byte. python-threatexchange's local-file exchange also reads
Vigie's own export and its signal types validate every line: it runs in the test venv that tests/parity_venv.py
builds (`.cache/parity-venv`, pip install threatexchange), or in the Python named by `VIGIE_PYTX_PYTHON`; that
part is skipped only when pip cannot install the package (the reason is pip's own).
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
from pathlib import Path

from vigie.banks.formats import detect_format, get_format
from vigie.banks.records import BankMeta, EntryData
from vigie.errors import RowError
from vigie.signals.vpdq import parse_features

FIXTURE = Path(__file__).parent / "data" / "pytx" / "local_file.txt"


def read(data: bytes) -> list[EntryData]:
    rows = list(get_format("te")().read(io.BytesIO(data)))
    assert not [r for _, r in rows if isinstance(r, RowError)]
    return [r for _, r in rows]


def write(entries) -> bytes:
    out = io.BytesIO()
    get_format("te")().write(entries, out, bank=BankMeta("b"))
    return out.getvalue()


def test_python_threatexchanges_own_file_reads_and_goes_back_byte_for_byte():
    data = FIXTURE.read_bytes()
    assert detect_format(data, FIXTURE.name) == "te"
    entries = read(data)
    assert [e.signal for e in entries] == ["pdq", "md5"] * 3 + ["vpdq"] * 4
    video = parse_features(entries[-1].value)
    assert [f.timestamp for f in video] == [0.0, 60.0, 120.0]  # "1.2e+02" as python-threatexchange prints 120
    assert write(entries) == data


def _vigie_export() -> bytes:
    rng = random.Random(5)
    frames = ";".join(f"{i},{rng.randint(50, 100)},{rng.getrandbits(256):064x},{i / 29.97:.3f}"
                      for i in range(0, 90, 29))
    return write([EntryData("pdq", f"{rng.getrandbits(256):064x}"), EntryData("md5", f"{rng.getrandbits(128):032x}"),
                  EntryData("sha256", f"{rng.getrandbits(256):064x}"), EntryData("vpdq", frames)])


PARSE = """
import json, sys, types
stand_in = types.ModuleType("vpdq"); stand_in.VpdqFeature = object; sys.modules.setdefault("vpdq", stand_in)
from threatexchange.exchanges.impl.file_api import FileCollaborationConfig, LocalFileSignalExchangeAPI
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal
types_ = {s.get_name(): s for s in (PdqSignal, VideoMD5Signal, VideoSHA256Signal, VPDQSignal)}
api = LocalFileSignalExchangeAPI(FileCollaborationConfig(name="v", api="local_file", enabled=True,
                                                         filename=sys.argv[1]))
got = []
for delta in api.fetch_iter(list(types_.values()), None):
    for (name, signal) in delta.updates:
        got.append([name, types_[name].validate_signal_str(signal)])
print(json.dumps(got))
"""


def _pytx_python() -> str:
    if os.environ.get("VIGIE_PYTX_PYTHON"):
        return os.environ["VIGIE_PYTX_PYTHON"]
    from parity_venv import parity_python

    return str(parity_python("threatexchange", "threatexchange.exchanges.impl.file_api"))


def test_python_threatexchange_reads_vigies_export(tmp_path):
    out = tmp_path / "vigie.txt"
    out.write_bytes(_vigie_export())
    r = subprocess.run([_pytx_python(), "-c", PARSE, str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    lines = [ln.split(" ", 1) for ln in out.read_text().splitlines()]
    assert got == lines and [n for n, _ in got] == ["pdq", "video_md5", "video_sha256", "vpdq"]
