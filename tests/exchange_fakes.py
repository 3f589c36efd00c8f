"""Fake hash-exchange servers on 127.0.0.1 that answer as each API documents, for tests/test_exchanges.py.

* NCMEC hash sharing (v2): `GET /v2/entries?from=&to=` (HTTP basic auth), an XML `queryResult` with
  `images` and `videos` (each `image`/`video` with `id`, `classification`, `member id=`, `timestamp` and
  `fingerprints`; a deleted entry as `deletedImage`/`deletedVideo`), `maxTimestamp` on each list, and
  `paging/next`: a path with `from`, `to`, `start`, `size` and `max` to follow for the next page. Entries
  are those changed in [from, to).
* StopNCII: `GET /v1/FetchHashes?startTimestamp=&pageSize=&nextPageToken=` with the `x-functions-key` and
  `Ocp-Apim-Subscription-Key` headers; JSON `count`, `nextPageToken`, `nextSetTimestamp`, `hasMoreRecords`,
  `hashRecords` (`lastModtimestamp`, `signalType`, `hashValue`, `hashStatus`, `caseNumbers`, `CSPFeedbacks`).
* Tech Against Terrorism: `POST /token-auth/tcap/` (username, password) gives a token; `GET
  /api/hash-list/v2/all?after=<checkpoint>` with `Authorization: Bearer` gives `count`, `next`, `previous`,
  `checkpoint` ("<timestamp>,<id>" of the last record) and `results`.

Every request is logged (`fake.log`) so a test can tell which pages were asked. Pages are small (2 records)
so that paging is exercised.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

NCMEC_FMT = "%Y-%m-%dT%H:%M:%SZ"
PAGE = 2


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def _serve(handler_cls, fake):
    class H(handler_cls):
        state = fake

        def log_message(self, *a):  # quiet
            pass

    srv = _Server(("127.0.0.1", 0), H)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class _Base(BaseHTTPRequestHandler):
    state = None

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# -- NCMEC ---------------------------------------------------------------------------------------------------

class FakeNcmec:
    def __init__(self, user: str = "u", password: str = "p"):
        self.auth = "Basic " + __import__("base64").b64encode(f"{user}:{password}".encode()).decode()
        self.entries: list[dict] = []  # id, member, type, ts, classification, fingerprints, deleted
        self.log: list[str] = []
        self.fail_after: int | None = None

    def add(self, id_: str, ts: int, *, member: int = 42, kind: str = "image", classification: str | None = "A1",
            fingerprints: dict | None = None, deleted: bool = False) -> None:
        self.entries = [e for e in self.entries if not (e["id"] == id_ and e["member"] == member)]
        self.entries.append({"id": id_, "member": member, "type": kind, "ts": ts, "classification": classification,
                             "fingerprints": fingerprints or {}, "deleted": deleted})

    def serve(self):
        return _serve(_NcmecHandler, self)


def _local_ts(s: str) -> int:
    # python-threatexchange writes `from`/`to` with datetime.fromtimestamp (local time) and a Z: read it back so.
    return int(datetime.strptime(s, NCMEC_FMT).timestamp())


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime(NCMEC_FMT)


class _NcmecHandler(_Base):
    def do_GET(self):  # noqa: N802
        st: FakeNcmec = self.state
        st.log.append(self.path)
        if self.headers.get("Authorization") != st.auth:
            return self._send(401, b"<error>unauthorized</error>", "application/xml")
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/v2/entries":
            return self._send(404, b"<error>not found</error>", "application/xml")
        q = urllib.parse.parse_qs(url.query)
        lo, hi = _local_ts(q["from"][0]), _local_ts(q["to"][0])
        start, size = int(q.get("start", ["0"])[0]), int(q.get("size", [str(PAGE)])[0])
        if st.fail_after is not None and len(st.log) > st.fail_after:
            return self._send(400, b"<error>fake failure</error>", "application/xml")
        chosen = sorted((e for e in st.entries if lo <= e["ts"] < hi), key=lambda e: (e["ts"], e["id"]))
        page = chosen[start:start + size]
        parts = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">']
        for kind in ("image", "video"):
            mine = [e for e in page if e["type"] == kind]
            if not mine:
                continue
            parts.append(f'<{kind}s count="{len(mine)}" maxTimestamp="{_utc(max(e["ts"] for e in mine))}">')
            for e in mine:
                tag = ("deleted" + kind.capitalize()) if e["deleted"] else kind
                parts.append(f"<{tag}><id>{escape(e['id'])}</id>")
                if e["classification"] and not e["deleted"]:
                    parts.append(f"<classification>{escape(e['classification'])}</classification>")
                parts.append(f'<member id="{e["member"]}">Member {e["member"]}</member>')
                parts.append(f"<timestamp>{_utc(e['ts'])}</timestamp>")
                if not e["deleted"]:
                    parts.append("<fingerprints>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in
                                                           e["fingerprints"].items()) + "</fingerprints>")
                parts.append(f"</{tag}>")
            parts.append(f"</{kind}s>")
        if start + size < len(chosen):
            nxt = (f"/v2/entries?from={q['from'][0]}&to={q['to'][0]}&start={start + size}&size={size}"
                   f"&max={len(chosen) - 1}")
            parts.append(f"<paging><next>{escape(nxt)}</next></paging>")
        parts.append("</queryResult>")
        return self._send(200, "".join(parts).encode(), "application/xml")


# -- StopNCII ------------------------------------------------------------------------------------------------

class FakeStopNcii:
    def __init__(self, function_key: str = "fk", subscription_key: str = "sk"):
        self.keys = (function_key, subscription_key)
        self.records: list[dict] = []
        self.log: list[str] = []

    def add(self, value: str, ts: int, *, signal: str = "ImagePDQ", status: str = "Active",
            feedbacks: list[dict] | None = None) -> None:
        self.records = [r for r in self.records if not (r["hashValue"] == value and r["signalType"] == signal)]
        self.records.append({"lastModtimestamp": ts, "signalType": signal, "hashValue": value, "hashStatus": status,
                             "caseNumbers": {}, "CSPFeedbacks": feedbacks or []})

    def serve(self):
        return _serve(_StopNciiHandler, self)


class _StopNciiHandler(_Base):
    def do_GET(self):  # noqa: N802
        st: FakeStopNcii = self.state
        st.log.append(self.path)
        if (self.headers.get("x-functions-key"), self.headers.get("Ocp-Apim-Subscription-Key")) != st.keys:
            return self._send(401, b'{"message": "unauthorized"}', "application/json")
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/v1/FetchHashes":
            return self._send(404, b'{"message": "not found"}', "application/json")
        q = urllib.parse.parse_qs(url.query)
        since = int(q["startTimestamp"][0])
        offset = int(q.get("nextPageToken", ["0"])[0] or 0)
        chosen = sorted((r for r in st.records if r["lastModtimestamp"] >= since), key=lambda r: r["lastModtimestamp"])
        page = chosen[offset:offset + PAGE]
        more = offset + PAGE < len(chosen)
        body = {"count": len(page), "nextPageToken": str(offset + PAGE) if more else None,
                "nextSetTimestamp": (page[-1]["lastModtimestamp"] + 1) if page else since,
                "hasMoreRecords": more, "hashRecords": page}
        return self._send(200, json.dumps(body).encode(), "application/json")


# -- Tech Against Terrorism ----------------------------------------------------------------------------------

class FakeTat:
    def __init__(self, username: str = "u", password: str = "p"):
        self.creds = (username, password)
        self.records: list[dict] = []
        self.log: list[str] = []

    def add(self, id_: int, value: str, ts: float, *, algorithm: str = "PDQ", file_type: str = "jpg",
            deleted: bool = False) -> None:
        self.records = [r for r in self.records if r["id"] != id_]
        self.records.append({"hash_digest": value, "algorithm": algorithm, "ideology": "islamist",
                             "file_type": file_type, "deleted": deleted, "updated_on": ts,
                             "created_on": "2024-01-01T00:00:00Z", "id": id_})

    def serve(self):
        return _serve(_TatHandler, self)


class _TatHandler(_Base):
    def do_POST(self):  # noqa: N802
        st: FakeTat = self.state
        st.log.append("POST " + self.path)
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        given = (form.get("username", [""])[0], form.get("password", [""])[0])
        if self.path != "/token-auth/tcap/" or given != st.creds:
            return self._send(401, b'{"error": "bad credentials"}', "application/json")
        body = json.dumps({"user": {"name": st.creds[0]}, "token": "tok"}).encode()
        return self._send(200, body, "application/json")

    def do_GET(self):  # noqa: N802
        st: FakeTat = self.state
        st.log.append(self.path)
        if self.headers.get("Authorization") != "Bearer tok":
            return self._send(401, b'{"error": "no token"}', "application/json")
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/api/hash-list/v2/all":
            return self._send(404, b'{"error": "not found"}', "application/json")
        q = urllib.parse.parse_qs(url.query)
        after = q.get("after", [""])[0]
        def key(r):
            return (r["updated_on"], r["id"])

        chosen = sorted(st.records, key=key)
        if after:
            ts, _, rid = after.partition(",")
            chosen = [r for r in chosen if key(r) > (float(ts), int(rid))]
        offset = int(q.get("offset", ["0"])[0])
        page = chosen[offset:offset + PAGE]
        more = offset + PAGE < len(chosen)
        last = page[-1] if page else None
        body = {"count": len(chosen), "next": f"limit={PAGE}&offset={offset + PAGE}" if more else None,
                "previous": None, "checkpoint": f"{last['updated_on']},{last['id']}" if last else after,
                "results": page}
        return self._send(200, json.dumps(body).encode(), "application/json")


# -- Meta ThreatExchange (Graph API) -------------------------------------------------------------------------

class FakeThreatExchange:
    """`GET /<privacy group>/threat_updates/?access_token=&start_time=&limit=&fields=` as the Graph API answers
    it: `data` (each update: `id`, `indicator`, `type`, `last_updated`, `should_delete`, `descriptors.data` with
    `id`, `owner{id}`, `status`, `tags`) in `last_updated` order from `start_time` (inclusive), and
    `paging.next`, a full URL, while more remain."""

    def __init__(self, token: str = "1234567890|" + "a" * 24, privacy_group: int = 303):
        self.token, self.group = token, privacy_group
        self.updates: list[dict] = []
        self.log: list[str] = []
        self.base = ""

    def add(self, id_: int, indicator: str, ts: int, *, type_: str = "HASH_PDQ", status: str = "MALICIOUS",
            tags: tuple[str, ...] = ("csam",), owner: int = 777, should_delete: bool = False) -> None:
        self.updates = [u for u in self.updates if u["id"] != str(id_)]
        u = {"id": str(id_), "indicator": indicator, "type": type_, "last_updated": ts, "should_delete": should_delete}
        if not should_delete:
            u["descriptors"] = {"data": [{"id": str(id_ * 10), "owner": {"id": str(owner)}, "status": status,
                                          "tags": list(tags), "added_on": "2024-01-01T00:00:00+0000"}]}
        self.updates.append(u)

    def serve(self):
        return _serve(_TeHandler, self)


class _TeHandler(_Base):
    def do_GET(self):  # noqa: N802
        st: FakeThreatExchange = self.state
        st.log.append(self.path)
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if q.get("access_token", [""])[0] != st.token:
            body = {"error": {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190}}
            return self._send(400, json.dumps(body).encode(), "application/json")
        if url.path.rstrip("/") != f"/{st.group}/threat_updates":
            return self._send(404, b'{"error": {"message": "unknown path", "code": 803}}', "application/json")
        since = int(q.get("start_time", ["0"])[0] or 0)
        limit = int(q.get("limit", [str(PAGE)])[0])
        limit = min(limit, PAGE)
        offset = int(q.get("after", ["0"])[0])
        chosen = sorted((u for u in st.updates if u["last_updated"] >= since),
                        key=lambda u: (u["last_updated"], int(u["id"])))
        page = chosen[offset:offset + limit]
        body: dict = {"data": page, "paging": {"cursors": {"before": str(offset), "after": str(offset + limit)}}}
        if offset + limit < len(chosen):
            host = self.headers.get("Host")
            body["paging"]["next"] = (f"http://{host}/{st.group}/threat_updates/?access_token={st.token}"
                                      f"&start_time={since}&limit={limit}&after={offset + limit}")
        return self._send(200, json.dumps(body).encode(), "application/json")
