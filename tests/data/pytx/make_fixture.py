"""Writes local_file.txt with python-threatexchange's own code (not Vigie's).

Run in a virtual environment with `pip install threatexchange` (1.2.17 was used):

    python tests/data/pytx/make_fixture.py tests/data/pytx/local_file.txt

Each line is printed as `threatexchange hash` prints one (`print(hasher.get_name(), hash_str)` in its
`cli/hash_cmd.py`), which is also the line its local-file exchange reads back (it splits at the first space).
(Its `LocalFileSignalExchangeAPI.report_opinion`, which would append such lines, opens the file with mode
"wta" and fails on Python 3.11.) vPDQ signal strings come from its `vpdq_to_json` over `VpdqCompactFeature`s;
the `vpdq` C++ bindings, which need FFmpeg's headers to build, are not needed to serialise, so a stand-in
module lets `vpdq_util` import. Hashes are seeded random hex: no media is involved.
"""

import random
import sys
import types

_stand_in = types.ModuleType("vpdq")
_stand_in.VpdqFeature = object  # only named in a type hint of vpdq_util
sys.modules.setdefault("vpdq", _stand_in)

from threatexchange.extensions.vpdq.vpdq import VPDQSignal  # noqa: E402
from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature, vpdq_to_json  # noqa: E402
from threatexchange.signal_type.md5 import VideoMD5Signal  # noqa: E402
from threatexchange.signal_type.pdq.signal import PdqSignal  # noqa: E402


def hexs(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def main(path: str) -> None:
    rng = random.Random(19)
    with open(path, "w") as f:
        for _ in range(3):
            print(PdqSignal.get_name(), hexs(rng, 64), file=f)
            print(VideoMD5Signal.get_name(), hexs(rng, 32), file=f)
        for frames, fps in ((4, 30.0), (3, 29.97), (2, 25.0), (3, 0.5)):
            feats = [VpdqCompactFeature(hexs(rng, 64), rng.randint(50, 100), i * 30 / fps) for i in range(frames)]
            signal = vpdq_to_json(feats)
            VPDQSignal.validate_signal_str(signal)
            print(VPDQSignal.get_name(), signal, file=f)


if __name__ == "__main__":
    main(sys.argv[1])
