"""Why a URL could not be fetched: one error type with stable codes, shared by every crawler module."""

from __future__ import annotations

#: HTTP statuses worth trying again later (the URL may come back); others close the question.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
TRANSIENT_CODES = frozenset({"timeout", "connect_failed", "http_transient"})


class FetchError(Exception):
    """Why a URL could not be fetched: a stable code, a message, the HTTP status when there was one, and
    `retry_after` (seconds) when the server said when to come back (429, 503)."""

    def __init__(self, code: str, message: str, *, status: int | None = None, ip: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.code, self.message, self.status, self.ip = code, message, status, ip
        self.retry_after = retry_after
        #: For a page over the page limit: what was read up to the limit (its pictures are still taken).
        self.partial: bytes | None = None
        self.url: str | None = None

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "status": self.status}
