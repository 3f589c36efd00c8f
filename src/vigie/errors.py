"""The few named errors of Vigie, each with a stable code.

::

    VigieError                  code, message; exit 1, HTTP 500
    ├── UsageError              bad arguments or settings           (exit 2, HTTP 400)
    ├── InvalidInput            a value that is not what it claims  (exit 1, HTTP 422)
    │   ├── InvalidHash         a hash of the wrong shape for its signal
    │   └── FormatError         a bank file that cannot be read; carries line-numbered row errors
    ├── MediaError              a file that cannot be read or decoded (exit 1, HTTP 422)
    ├── NotFound                a bank, entry or file that does not exist (exit 1, HTTP 404)
    └── Conflict                a name already taken (exit 1, HTTP 409)

Codes are part of the public contract: JSON output, the API and the docs
(`docs/errors.md`) use them, so they never change once released.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class VigieError(Exception):
    code = "error"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class UsageError(VigieError):
    code = "bad_usage"
    exit_code = 2
    http_status = 400


class InvalidInput(VigieError):
    code = "invalid_input"
    http_status = 422


class InvalidHash(InvalidInput):
    code = "invalid_hash"


@dataclass(frozen=True)
class RowError:
    """One bad row of an import: where it is and why it was refused."""

    line: int
    code: str
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "code": self.code, "message": self.message}


class FormatError(InvalidInput):
    code = "bad_format"

    def __init__(self, message: str, *, code: str | None = None, rows: list[RowError] | None = None):
        super().__init__(message, code=code)
        self.rows: list[RowError] = list(rows or [])

    def as_dict(self) -> dict:
        d = super().as_dict()
        if self.rows:
            d["rows"] = [r.as_dict() for r in self.rows]
        return d


class MediaError(VigieError):
    """A file that cannot be hashed. Codes: not_media, truncated, too_large, unreadable,
    unsupported, special_file, symlink_loop, decode_error."""

    code = "unreadable"
    http_status = 422


class NotFound(VigieError):
    code = "not_found"
    http_status = 404


class Conflict(VigieError):
    code = "conflict"
    http_status = 409


@dataclass
class ErrorRecord:
    """A failure inside a batch: recorded, never raised, so the batch goes on."""

    code: str
    message: str
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_exc(cls, exc: BaseException) -> ErrorRecord:
        if isinstance(exc, VigieError):
            return cls(exc.code, exc.message)
        return cls("internal_error", f"{type(exc).__name__}: {exc}")

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, **self.extra}
