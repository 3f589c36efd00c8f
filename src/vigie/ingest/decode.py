"""Content-Encoding decoded in streaming, with the byte limit applied to what comes out.

A body of a kilobyte can decode to gigabytes (a brotli or gzip "bomb"), and encodings stack
(``Content-Encoding: gzip, gzip``). Decoding a whole chunk at once, as HTTP clients do, lets one
small chunk allocate everything it expands to before any limit is checked. Here every layer hands
out at most `PIECE` bytes at a time (zlib's `max_length`, brotli's `output_buffer_limit`), each piece
goes through the next layer the same way, and the caller counts the final bytes and stops pulling
when they pass its limit: memory stays within a few pieces per layer whatever the ratio. Each
layer's own output is also held to the limit, so a layer that inflates into a layer that shrinks
again cannot burn CPU unbounded.

Supported: gzip (x-gzip, concatenated members), deflate (zlib-wrapped or raw, as browsers accept),
br, identity; at most `MAX_LAYERS` of them. Anything else: FetchError `bad_response`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from vigie.ingest.fetch_errors import FetchError

PIECE = 64 * 1024
MAX_LAYERS = 3


class _Zlib:
    def __init__(self, kind: str):
        self.kind = kind
        self.d = None
        self.pending = b""

    def _new(self, head: bytes):
        if self.kind == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # deflate: RFC 9110 says zlib-wrapped; some servers send raw deflate, which browsers accept too
        wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        buf = self.pending + data
        self.pending = b""
        while buf:
            if self.d is None:
                if self.kind == "deflate" and len(buf) < 2:
                    self.pending = buf
                    return
                self.d = self._new(buf)
            d = self.d
            try:
                out = d.decompress(buf, PIECE)
                while True:
                    if out:
                        yield out
                    tail = d.unconsumed_tail
                    if d.eof or (not tail and len(out) < PIECE):
                        break
                    out = d.decompress(tail, PIECE)
                    if not out and not tail:
                        break
            except zlib.error as exc:
                raise FetchError("bad_response", f"cannot decode the {self.kind} body: {exc}") from None
            buf = b""
            if self.d.eof and self.d.unused_data:  # another gzip member follows
                buf = self.d.unused_data
                if self.kind != "gzip" or not buf.strip(b"\0"):
                    return
                self.d = None

    def finish(self) -> Iterator[bytes]:
        if self.pending:
            yield from self.feed(b"")
        return


class _Brotli:
    def __init__(self):
        import brotli

        self.brotli = brotli
        self.d = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self.d.process(data, output_buffer_limit=PIECE)
            while out:  # the limit is per call: drain what this input gives, a piece at a time
                yield out
                if self.d.is_finished():
                    return
                out = self.d.process(b"", output_buffer_limit=PIECE)
        except self.brotli.error as exc:
            raise FetchError("bad_response", f"cannot decode the br body: {exc}") from None

    def finish(self) -> Iterator[bytes]:
        return iter(())


def _layer(name: str):
    if name in ("gzip", "x-gzip"):
        return _Zlib("gzip")
    if name == "deflate":
        return _Zlib("deflate")
    if name == "br":
        return _Brotli()
    raise FetchError("bad_response", f"unsupported Content-Encoding {name!r}")


class Decoder:
    """Undo a Content-Encoding header (``"gzip, br"``: gzip first, then br, so br is undone first).
    `feed(raw)` and `finish()` yield decoded pieces of at most PIECE bytes; `limit` bounds every layer."""

    def __init__(self, content_encoding: str | None, limit: int):
        names = [n.strip().lower() for n in (content_encoding or "").split(",")]
        names = [n for n in names if n and n != "identity"]
        if len(names) > MAX_LAYERS:
            raise FetchError("bad_response", f"{len(names)} stacked Content-Encodings: at most {MAX_LAYERS} are "
                             "decoded")
        self.layers = [_layer(n) for n in reversed(names)]
        self.out = [0] * len(self.layers)
        self.limit = limit

    @property
    def identity(self) -> bool:
        return not self.layers

    def _push(self, i: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            if i == len(self.layers):
                yield piece
                continue
            yield from self._push(i + 1, self._count(i, self.layers[i].feed(piece)))

    def _count(self, i: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        for piece in pieces:
            self.out[i] += len(piece)
            if self.out[i] > self.limit:
                raise FetchError("too_large", f"the body decodes to more than the limit of {self.limit:,} bytes")
            yield piece

    def feed(self, raw: bytes) -> Iterator[bytes]:
        yield from self._push(0, iter((raw,)))

    def finish(self) -> Iterator[bytes]:
        for i, layer in enumerate(self.layers):
            yield from self._push(i + 1, self._count(i, layer.finish()))


def decode_all(content_encoding: str | None, raw: bytes, limit: int) -> bytes:
    """Decode a whole body (tests, small bodies); FetchError `too_large` past `limit` decoded bytes."""
    d = Decoder(content_encoding, limit)
    out = bytearray()
    for chunk in (raw[i:i + PIECE] for i in range(0, len(raw), PIECE)):
        for piece in d.feed(chunk):
            out += piece
    for piece in d.finish():
        out += piece
    return bytes(out)
