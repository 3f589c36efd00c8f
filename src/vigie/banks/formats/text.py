"""A plain hash list: one value per line, the commonest thing hotlines are sent.

Blank lines and `#` comments are ignored, except the directive `# signal: <name>`, which
Vigie writes at the top so that a list of 64-hex values (PDQ or SHA-256) reads back
without the `signal` option. `md5sum`/`sha1sum` output (`<hash>  <file name>`) is
accepted too: the text after the hash becomes the entry's note.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from vigie.banks.formats._common import decode_error, open_text, resolve_signal
from vigie.banks.formats.base import BankFormat, Row
from vigie.banks.records import BankMeta, EntryData
from vigie.errors import InvalidHash, RowError, UsageError
from vigie.signals import get_signal

_DIRECTIVE = re.compile(r"^#\s*signal\s*[:=]\s*(\S+)\s*$", re.IGNORECASE)


class TextFormat(BankFormat):
    name = "text"
    extensions = (".txt", ".hashes", ".md5", ".sha1", ".sha256", ".pdq", ".lst")

    def read(self, stream: BinaryIO) -> Iterator[Row]:
        text = open_text(stream, "text")
        try:
            yield from self._read(text)
        finally:
            text.detach()

    def _read(self, text: io.TextIOWrapper) -> Iterator[Row]:
        file_signal = None
        line = 0
        while True:
            try:
                raw = text.readline()
            except UnicodeDecodeError as exc:
                raise decode_error("text", line + 1, exc) from None
            if not raw:
                return
            line += 1
            s = raw.strip()
            if not s:
                continue
            if s.startswith("#"):
                m = _DIRECTIVE.match(s)
                if m:
                    try:
                        file_signal = get_signal(m.group(1)).name
                    except InvalidHash as exc:
                        yield line, RowError(line, exc.code, exc.message)
                continue
            value, *tail = s.split(None, 1)
            rest = tail[0] if tail else ""
            if rest.startswith("#"):
                rest = ""
            rest = rest.removeprefix("*")  # md5sum's binary-mode marker
            try:
                signal, value = resolve_signal(None, value, self.signal or file_signal)
            except InvalidHash as exc:
                yield line, RowError(line, exc.code, exc.message)
                continue
            yield line, EntryData(signal=signal, value=value, note=rest or None)

    def write(self, entries: Iterable[EntryData], stream: BinaryIO, *, bank: BankMeta) -> int:
        """Write live entries of one signal type. With the `signal` option only that type is
        written (others are counted in `skipped`); without it, a second type is a FormatError."""
        only = get_signal(self.signal).name if self.signal else None
        self._start_write()
        if self.options.get("shape") or self.options.get("profile") or self.options.get("version"):
            raise UsageError("shape, profile and version are options of the vics and te formats, not of text")
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            text.write(f"# Vigie bank: {bank.name}\n")
            current = only
            if only:
                text.write(f"# signal: {only}\n")
            n = 0
            for e in entries:
                if e.removed:
                    self.leave_out("removed", e.value)
                    continue
                if only and e.signal != only:
                    self.leave_out("other_signal", e.signal)
                    continue
                if current is None:
                    current = e.signal
                    text.write(f"# signal: {current}\n")
                elif e.signal != current:
                    raise UsageError(
                        f"a text list holds one signal type, but the entries have {current} and {e.signal}: "
                        "give the signal option to export one type, or use the csv or te format")
                text.write(e.value + "\n")
                n += 1
            text.flush()
            return n
        finally:
            text.detach()
