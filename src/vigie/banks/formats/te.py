"""ThreatExchange / HMA hash lists, as python-threatexchange reads and writes them.

python-threatexchange has no file format of its own beyond a few text shapes, all read here:

* `<signal_type> <hash>` per line: what `threatexchange hash` prints, what its local-file
  exchange (`LocalFileSignalExchangeAPI`, the way to load a hash list into the CLI or HMA)
  reads and appends. A bare `<hash>` line is what that exchange reads when its collaboration
  names the signal type (our `signal` option).
* `threatexchange dataset -P` output: `['<collab>'] [<signal_type>] <hash> [<metadata>]`,
  the collaboration name quoted with Python's repr when several are printed.
* `threatexchange dataset -P --csv`: a CSV with the header
  `collab,signal_type,signal_str,category,tags` (tags separated by spaces).

Signal type names are python-threatexchange's: `pdq`, `video_md5` (its only MD5 type),
`video_sha256`, `vpdq`; Vigie's own names (`md5`, `sha1`, `sha256`) are accepted too. A
`vpdq` signal string is python-threatexchange's JSON list of `"pdq_hex,quality,timestamp"`
strings, which holds spaces: as python-threatexchange does (it splits a line at its first
space only), everything after the type name is the hash. Vigie writes vPDQ exactly as
python-threatexchange does (see `pytx_vpdq`). Types Vigie
cannot match (`url`, `raw_text`, `tmk_pdqf`, ...) are row errors with code unknown_signal.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from vigie.banks.formats._common import CsvRows, decode_error, open_text, resolve_signal
from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.records import BankMeta, EntryData
from vigie.errors import FormatError, InvalidHash, RowError, UsageError
from vigie.signals import get_signal
from vigie.signals.vpdq import parse_features

#: python-threatexchange names (and a few spellings) to Vigie's.
TE_SIGNALS = {"pdq": "pdq", "video_md5": "md5", "photo_md5": "md5", "md5": "md5",
              "video_sha256": "sha256", "sha256": "sha256", "sha1": "sha1", "vpdq": "vpdq"}
#: Vigie's names to python-threatexchange's, for writing. SHA-1 has no TE type and keeps its name.
TO_TE = {"pdq": "pdq", "md5": "video_md5", "sha256": "video_sha256", "sha1": "sha1", "vpdq": "vpdq"}
CSV_HEADER = ("collab", "signal_type", "signal_str", "category", "tags")

_QUOTED = re.compile(r"""^('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*(.*)$""")
_HEX = re.compile(r"^(0x)?[0-9a-fA-F]+$")


def pytx_vpdq(value: str) -> str:
    """A vPDQ value as python-threatexchange serialises it (`vpdq_to_json` of `VpdqCompactFeature`s):
    a JSON list of `"pdq_hex,quality,timestamp"` with the timestamp in Python's `{:.3}` format, i.e. three
    *significant* digits (`1.0`, `1.03`, `1.23e+02`), exactly as python-threatexchange writes it, so that
    its files go out as they came. Frame numbers are not in that form; timestamps lose precision after
    the third digit (python-threatexchange's matching does not use them)."""
    return json.dumps([f"{f.pdq_hex},{f.quality},{f.timestamp:.3}" for f in parse_features(value)])


def te_signal(name: str) -> str:
    """Vigie's signal name for a python-threatexchange one; InvalidHash(unknown_signal) otherwise."""
    key = name.strip().lower()
    if key in TE_SIGNALS:
        return TE_SIGNALS[key]
    return get_signal(key).name


def is_te_signal_name(name: str) -> bool:
    try:
        te_signal(name)
    except InvalidHash:
        return False
    return True


class TeFormat(BankFormat):
    name = "te"
    extensions = (".te",)

    # -- reading -------------------------------------------------------------

    def read(self, stream: BinaryIO) -> Iterator[Row]:
        text = open_text(stream, "ThreatExchange")
        try:
            yield from self._read(text)
        finally:
            text.detach()

    def _lines(self, text: io.TextIOWrapper) -> Iterator[tuple[int, str]]:
        line = 0
        while True:
            try:
                raw = text.readline()
            except UnicodeDecodeError as exc:
                raise decode_error("ThreatExchange", line + 1, exc) from None
            if not raw:
                return
            line += 1
            yield line, raw

    def _read(self, text: io.TextIOWrapper) -> Iterator[Row]:
        lines = self._lines(text)
        for line, raw in lines:
            s = raw.strip()
            if not s or s.startswith("#"):
                continue
            header = [c.strip().lower() for c in next(csv.reader([s]))]
            if "signal_type" in header and "signal_str" in header:
                yield from self._read_csv(header, lines)
                return
            yield line, self._parse_line(line, s)
            break
        for line, raw in lines:
            s = raw.strip()
            if s and not s.startswith("#"):
                yield line, self._parse_line(line, s)

    def _parse_line(self, line: int, s: str) -> EntryData | RowError:
        extra: dict = {}
        m = _QUOTED.match(s)
        if m:
            try:
                extra["te_collab"] = ast.literal_eval(m.group(1))
            except (ValueError, SyntaxError):
                return RowError(line, "bad_row",
                                f"cannot read the quoted collaboration name {m.group(1)[:60]!r}")
            s = m.group(2)
        tokens = s.split(None, 2)
        head = s.split(None, 1)
        if len(head) == 2 and head[1][:1] in "[{" and is_te_signal_name(head[0]):
            tokens = head  # a JSON signal string (vPDQ): the rest of the line, spaces and all
        if not tokens:
            return RowError(line, "missing_value", "no hash after the collaboration name")
        if len(tokens) == 1 or (_HEX.match(tokens[0]) and not is_te_signal_name(tokens[0])):
            name, value, meta = None, tokens[0], " ".join(tokens[1:])
        else:
            name, value, meta = tokens[0], tokens[1], tokens[2] if len(tokens) > 2 else ""
        if meta:
            extra["te_metadata"] = meta
        try:
            signal = te_signal(name) if name else None
            signal, value = resolve_signal(signal, value, self.signal)
        except InvalidHash as exc:
            return RowError(line, exc.code, exc.message)
        return EntryData(signal=signal, value=value, extra=extra)

    def _read_csv(self, header: list[str], lines: Iterator[tuple[int, str]]) -> Iterator[Row]:
        for line, raw in lines:
            if not raw.strip():
                continue
            try:
                cells = next(csv.reader([raw]))
            except csv.Error as exc:
                yield line, RowError(line, "bad_row", f"unreadable CSV row: {exc}")
                continue
            row = {c: (cells[i].strip() if i < len(cells) else "") for i, c in enumerate(header)}
            if not row.get("signal_str"):
                yield line, RowError(line, "missing_value", "the 'signal_str' cell is empty")
                continue
            try:
                signal = te_signal(row["signal_type"]) if row.get("signal_type") else None
                signal, value = resolve_signal(signal, row["signal_str"], self.signal)
            except InvalidHash as exc:
                yield line, RowError(line, exc.code, exc.message)
                continue
            extra = {k: row[c] for k, c in (("te_collab", "collab"), ("te_category", "category"))
                     if row.get(c)}
            yield line, EntryData(signal=signal, value=value, tags=row.get("tags", "").split(), extra=extra)

    # -- writing -------------------------------------------------------------

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """`<signal_type> <hash>` lines (option `shape="csv"` or `csv=True`: the `dataset --csv` shape
        with collaboration, category and tags).

        Options: `md5_name` (default `video_md5`, python-threatexchange's only MD5 type),
        `signal` (write only that type). Tombstones are left out (counted in `skipped`).
        """
        names = dict(TO_TE, md5=self.options.get("md5_name", TO_TE["md5"]))
        only = get_signal(self.signal).name if self.signal else None
        shape = self.options.get("shape") or ("csv" if self.options.get("csv") else "lines")
        if shape not in ("lines", "csv"):
            raise UsageError(f"the ThreatExchange shape must be 'lines' or 'csv', not {shape!r}")
        as_csv = shape == "csv"
        self._start_write()
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            w = CsvRows(text) if as_csv else None
            if w:
                w.writerow(CSV_HEADER)
            n = sha1 = 0
            for e in entries:
                if e.removed:
                    self.leave_out("removed", e.value)
                    continue
                if only and e.signal != only:
                    self.leave_out("other_signal", e.signal)
                    continue
                te_name = names.get(e.signal)
                if te_name is None:
                    raise FormatError(f"no ThreatExchange name for signal type {e.signal!r}",
                                      code="unknown_signal")
                value = pytx_vpdq(e.value) if e.signal == "vpdq" else e.value
                if w:
                    tags = " ".join(t.replace(" ", "_") for t in e.tags)
                    w.writerow([e.extra.get("te_collab", bank.name), te_name, value,
                                e.extra.get("te_category", ""), tags])
                else:
                    text.write(f"{te_name} {value}\n")
                n += 1
                sha1 += te_name == "sha1"
            if sha1:
                self.warnings.append(f"{sha1:,} SHA-1 entr(y/ies) written as type 'sha1', which Vigie reads back "
                                     "but python-threatexchange and HMA do not know")
            text.flush()
            return n
        finally:
            text.detach()
