"""Hash exchanges read through python-threatexchange: NCMEC hash sharing, StopNCII, Tech Against Terrorism and
Meta ThreatExchange, each into a Vigie bank, with the exchange's own checkpoint kept so a fetch resumes.

Vigie does not write clients for these APIs: python-threatexchange (PyPI `threatexchange`, the library HMA
uses) has them, with their paging rules and checkpoints. Its requirements do not conflict with Vigie's (none is
pinned), so it can be installed beside Vigie (`vigie[exchanges]`) or in a virtual environment of its own (faiss,
pdqhash and requests then stay out of Vigie's); either way Vigie drives it as a subprocess, so a library
failure never takes the process that holds the store down: `vigie/sharing/pytx_driver.py`
runs the API's `fetch_iter` from the stored checkpoint and prints a JSON line per batch; Vigie applies each
batch and stores the checkpoint that closes it in one transaction. A fetch stopped anywhere (a crash, the
server failing, the process killed) resumes from the last batch applied: nothing is lost and nothing counted
twice (entries are keyed by bank, signal and value). The environment's interpreter is given by `python=`,
else `VIGIE_EXCHANGE_PYTHON`, else Vigie's own when python-threatexchange is installed beside it (the optional
extra `vigie[exchanges]`), else `.cache/parity-venv/bin/python` of a source checkout (the test venv).

What a batch does to the bank (one record = one key of the API: an NCMEC entry `member-id`, a StopNCII or
TAT `(type, hash)`, a ThreatExchange `(type, indicator)`):

* signals: pytx's own `naive_convert_to_signal_type` decides them; `pdq` -> pdq, `video_md5` -> md5 (Vigie
  hashes every file with MD5), `vpdq` -> vpdq (where pytx's vPDQ extension is installed); others (PhotoDNA,
  URLs, text) are counted in `skipped` and left out. NCMEC image entries also give their `md5` and `sha1`
  fingerprints (which pytx does not convert), so a hotline matches NCMEC's digests too.
* each entry carries `media_key` = `<api>:<key>` (all signals of one record together), `external_id` = the key,
  tags = the opinions' tags (NCMEC: the classification, e.g. `A1`) and `extra.exchange` = name, API, key,
  opinion categories, time received. `added_by` = `exchange:<name>`.
* removals: a record deleted by the API (pytx's `fetch_value_merge` gives None: NCMEC tombstones, TAT
  `deleted`), or a signal whose aggregate opinion (pytx's `get_as_aggregate_opinion`) is NEGATIVE_CLASS or
  DISPUTED (partners call it a false positive), tombstones
  the entries; a signal the record no longer has is tombstoned too (a record replaces the earlier one). A
  tombstone made by a person stays; one made by this exchange is revived if the exchange sends it again.
* every batch that adds notes a bank change in its transaction (`vigie.banks.changes`), so what waits in the
  queue is re-matched (`vigie.rematch`) and the invariants hold as for any import.

Credentials are sealed with the media key (`vigie.sealed`), never stored in clear; `add` refuses without one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from vigie import audit
from vigie.banks import changes
from vigie.banks.service import _bank, create_bank
from vigie.errors import Conflict, InvalidHash, NotFound, UsageError
from vigie.sharing import SharingError
from vigie.sharing.exchange_models import ExchangeSubscription
from vigie.signals import get_signal
from vigie.store.db import Store
from vigie.store.models import Entry, utcnow

SEALED_AT = "exchange_subscriptions.credentials"
DRIVER = Path(__file__).with_name("pytx_driver.py")
#: The API names python-threatexchange gives, and the credential fields each needs.
APIS: dict[str, tuple[str, ...]] = {
    "ncmec": ("user", "password"),
    "stop_ncii": ("fetch_function_key", "subscription_key"),
    "tat": ("username", "password"),
    "fb_threat_exchange": ("api_token",),
}
#: python-threatexchange signal type name -> Vigie signal.
SIGNALS = {"pdq": "pdq", "video_md5": "md5", "vpdq": "vpdq"}
#: NCMEC fingerprint tags pytx does not convert but Vigie matches on.
NCMEC_DIGESTS = {"md5": "md5", "sha1": "sha1", "MD5": "md5", "SHA1": "sha1"}
MAX_LINE = 64 * 2**20
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class FetchResult:
    name: str
    ok: bool = True
    batches: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    skipped: int = 0
    checkpoint: dict | None = None
    error: dict | None = None
    skipped_types: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"name": self.name, "ok": self.ok, "batches": self.batches, "added": self.added,
                "updated": self.updated, "removed": self.removed, "skipped": self.skipped,
                "skipped_types": self.skipped_types, "checkpoint": self.checkpoint, "error": self.error}


def _info(x: ExchangeSubscription) -> dict:
    return {"name": x.name, "api": x.api, "bank": x.local_bank, "config": x.config or {}, "base_url": x.base_url,
            "checkpoint": x.checkpoint, "last_fetch_at": x.last_fetch_at.isoformat() if x.last_fetch_at else None,
            "last_error": x.last_error}


def add(store: Store, name: str, api: str, bank: str, credentials: dict, *, config: dict | None = None,
        base_url: str | None = None, by: str | None = None) -> dict:
    """Record an exchange subscription (its bank is made when missing); credentials sealed (`no_media_key`
    without a media key). `base_url` points the API's client elsewhere (a test server)."""
    from vigie import sealed

    name = name.strip()
    if not name or len(name) > 200:
        raise UsageError("an exchange name is 1 to 200 characters", code="bad_name")
    if api not in APIS:
        raise UsageError(f"unknown exchange api {api!r} (known: {', '.join(APIS)})", code="unknown_exchange")
    missing = [k for k in APIS[api] if not str(credentials.get(k) or "").strip()]
    if missing:
        raise UsageError(f"the {api} exchange needs {', '.join(APIS[api])} (missing: {', '.join(missing)})",
                         code="missing_credentials")
    if base_url is not None and not base_url.startswith(("http://", "https://")):
        raise UsageError("the base URL starts with https:// (or http://)", code="bad_url")
    if api == "fb_threat_exchange" and not (config or {}).get("privacy_group"):
        raise UsageError("a ThreatExchange subscription needs config privacy_group", code="bad_config")
    sealed_creds = sealed.seal(store.settings, json.dumps({k: str(credentials[k]) for k in APIS[api]}), SEALED_AT,
                               required=True)
    with store.session() as s:
        if s.scalar(select(ExchangeSubscription.id).where(ExchangeSubscription.name == name)) is not None:
            raise Conflict(f"an exchange subscription named {name!r} exists already", code="exchange_exists")
    try:
        create_bank(store, bank, description=f"received from the {api} exchange ({name})", source=f"exchange:{api}")
    except Conflict:
        pass
    with store.session() as s:
        x = ExchangeSubscription(name=name, api=api, local_bank=bank, config=dict(config or {}), base_url=base_url,
                                 credentials=sealed_creds, checkpoint=None, created_by=by)
        s.add(x)
        s.flush()
        audit.record(store, by or "-", "exchange.add", "exchange", name,
                     {"api": api, "bank": bank, "base_url": base_url}, session=s)
        return _info(x)


def list_exchanges(store: Store) -> list[dict]:
    with store.sessions() as s:
        return [_info(x) for x in s.scalars(select(ExchangeSubscription).order_by(ExchangeSubscription.name))]


def fetch_all(store: Store, *, python: str | os.PathLike | None = None, timeout: float = 3600) -> list[FetchResult]:
    """Fetch every subscription in turn (`vigie serve` does it every `sharing_sync_minutes`). One process at a
    time across machines (`Store.exclusive`): another finds it busy and returns [] at once, so two servers never
    apply the same batch. A failing exchange is recorded on its subscription and the others go on."""
    with store.exclusive("exchanges") as mine:
        if not mine:
            return []
        return [fetch(store, x["name"], python=python, timeout=timeout) for x in list_exchanges(store)]


def remove(store: Store, name: str, *, by: str | None = None) -> None:
    """Forget a subscription and its checkpoint (the entries received stay in the bank)."""
    with store.session() as s:
        s.delete(_get(s, name))
        audit.record(store, by or "-", "exchange.remove", "exchange", name, {}, session=s)


def _get(s, name: str) -> ExchangeSubscription:
    x = s.scalar(select(ExchangeSubscription).where(ExchangeSubscription.name == name))
    if x is None:
        raise NotFound(f"no exchange subscription named {name!r}", code="exchange_not_found")
    return x


def exchange_python(python: str | os.PathLike | None = None) -> Path:
    """The interpreter of the environment holding python-threatexchange (see the module docstring)."""
    given = python or os.environ.get("VIGIE_EXCHANGE_PYTHON")
    if given:
        if not Path(given).is_file():
            raise SharingError(f"the python-threatexchange environment's python {str(given)!r} does not exist",
                               code="no_exchange_env")
        return Path(given)
    import importlib.util

    if importlib.util.find_spec("threatexchange") is not None:  # installed beside Vigie: vigie[exchanges]
        return Path(sys.executable)
    default = ROOT / ".cache" / "parity-venv" / "bin" / "python"
    if default.is_file():
        return default
    raise SharingError("no python-threatexchange environment: create one (python -m venv /opt/vigie-pytx && "
                       "/opt/vigie-pytx/bin/pip install threatexchange) and set VIGIE_EXCHANGE_PYTHON to its python",
                       code="no_exchange_env")


def fetch(store: Store, name: str, *, python: str | os.PathLike | None = None, max_batches: int | None = None,
          timeout: float = 3600) -> FetchResult:
    """Fetch what the exchange has since the stored checkpoint, a batch per transaction (see the module).
    Never raises for the exchange's failures: the result (and `last_error`) says what went wrong."""
    from vigie import sealed

    with store.sessions() as s:
        x = _get(s, name)
        s.expunge(x)
    res = FetchResult(name=name, checkpoint=x.checkpoint)
    proc = errf = watchdog = None
    timed_out: list[bool] = []
    try:
        py = exchange_python(python)
        creds = json.loads(sealed.unseal(store.settings, x.credentials, SEALED_AT) or "{}")
        req = {"api": x.api, "name": x.name, "collab": x.config or {}, "credentials": creds,
               "base_url": x.base_url, "checkpoint": x.checkpoint, "max_batches": max_batches}
        # -I: isolated, so the driver's folder (Vigie's sharing package) and PYTHON* variables do not shadow
        # the environment's own modules.
        # stderr goes to a file, not a pipe: the library's warnings on a long fetch would fill a pipe nobody
        # reads while the batches are applied, and stop the driver.
        errf = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in the finally below
        proc = subprocess.Popen([str(py), "-I", str(DRIVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=errf, text=True, cwd=str(DRIVER.parent))
        # The library's clients may set no request timeout (ThreatExchange's does not): a server that hangs would
        # hang the fetch. The whole fetch has `timeout` seconds; past it the driver is killed, what it applied
        # stays (each batch with its checkpoint) and the next fetch resumes from there.
        watchdog = threading.Timer(timeout, _kill, (proc, timed_out))
        watchdog.daemon = True
        watchdog.start()
        proc.stdin.write(json.dumps(req))
        proc.stdin.close()
        for line in proc.stdout:
            if len(line) > MAX_LINE:
                raise SharingError("the exchange driver printed a batch too large to apply", code="bad_answer")
            try:
                batch = json.loads(line)
            except ValueError:
                raise SharingError(f"the exchange driver printed something else than JSON: {line[:200]!r}",
                                   code="bad_answer") from None
            _apply_batch(store, x, batch, res)
        if proc.wait() != 0:
            if timed_out:
                raise SharingError(f"the {x.api} fetch took more than {timeout:g} s and was stopped; what it "
                                   "brought before is kept and the next fetch goes on from there",
                                   code="fetch_timeout")
            errf.seek(0)
            raise SharingError(f"the {x.api} fetch failed: {_last_line(errf.read()[-20000:])}", code="fetch_failed")
        with store.session() as s:
            row = _get(s, name)
            row.last_fetch_at, row.last_error = utcnow(), None
    except Exception as exc:  # noqa: BLE001 - recorded on the subscription, the others go on
        from vigie.errors import VigieError

        if not isinstance(exc, VigieError):
            exc = SharingError(f"the {x.api} fetch stopped ({type(exc).__name__}: {str(exc)[:300]})",
                               code="fetch_failed")
        res.ok, res.error = False, exc.as_dict()
        with store.session() as s:
            row = _get(s, name)
            row.last_error = {**exc.as_dict(), "at": utcnow().isoformat()}
            audit.record(store, "-", "exchange.fetch_failed", "exchange", name, exc.as_dict(), session=s)
    finally:
        if watchdog is not None:
            watchdog.cancel()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if errf is not None:
            errf.close()
    from vigie.banks.service import _rematch

    _rematch(store)
    return res


def _kill(proc: subprocess.Popen, flag: list) -> None:
    flag.append(True)
    proc.kill()


def _last_line(err: str) -> str:
    lines = [ln for ln in (err or "").strip().splitlines() if ln.strip()]
    return lines[-1][:400] if lines else "no message"


def _wanted(api: str, rec: dict, res: FetchResult) -> dict[tuple[str, str], dict]:
    """(Vigie signal, value) -> what the record says about it (tags, opinion categories, disputed)."""
    out: dict[tuple[str, str], dict] = {}
    for sg in rec.get("signals") or []:
        vs = SIGNALS.get(sg.get("type"))
        if vs is None:
            res.skipped += 1
            res.skipped_types[sg.get("type")] = res.skipped_types.get(sg.get("type"), 0) + 1
            continue
        try:
            value = get_signal(vs).normalise(str(sg.get("value")))
        except InvalidHash:
            res.skipped += 1
            continue
        ops = sg.get("opinions") or []
        tags = sorted({str(t) for o in ops for t in (o.get("tags") or [])})
        out[(vs, value)] = {"tags": tags, "categories": sorted({str(o.get("category")) for o in ops}),
                            "disputed": sg.get("aggregate") in ("NEGATIVE_CLASS", "DISPUTED")}
    meta = rec.get("meta") or {}
    if api == "ncmec" and meta.get("entry_type") == "image":
        tags = [meta["classification"]] if meta.get("classification") else []
        for tag, value in (meta.get("fingerprints") or {}).items():
            vs = NCMEC_DIGESTS.get(tag)
            if vs is None:
                continue
            try:
                out.setdefault((vs, get_signal(vs).normalise(str(value))),
                               {"tags": tags, "categories": ["POSITIVE_CLASS"], "disputed": False})
            except InvalidHash:
                res.skipped += 1
    return out


def _apply_batch(store: Store, x: ExchangeSubscription, batch: dict, res: FetchResult) -> None:
    """One batch and the checkpoint that closes it, in one transaction."""
    if not isinstance(batch, dict) or not isinstance(batch.get("records"), list):
        raise SharingError("the exchange driver printed a batch without records", code="bad_answer")
    by = f"exchange:{x.name}"
    now = utcnow()
    added = updated = removed = 0
    with store.session() as s:
        row = _get(s, x.name)
        bank_id = _bank(s, x.local_bank).id
        for rec in batch["records"]:
            key = str(rec.get("key"))
            mk = f"{x.api}:{key}"[:200]
            have = {(e.signal, e.value): e for e in
                    s.scalars(select(Entry).where(Entry.bank_id == bank_id, Entry.media_key == mk))}
            want = {} if rec.get("deleted") else _wanted(x.api, rec, res)
            for (sig, value), info in want.items():
                k = get_signal(sig).key(value)
                cur = have.pop((sig, k), None) or s.scalar(select(Entry).where(
                    Entry.bank_id == bank_id, Entry.signal == sig, Entry.value == k))
                extra = {"exchange": {"name": x.name, "api": x.api, "key": key, "opinions": info["categories"],
                                      "received_at": now.isoformat()}}
                if info["disputed"]:
                    if cur is not None and cur.removed_at is None:
                        cur.removed_at, cur.removed_by = now, by
                        cur.removed_reason = f"disputed on {x.api} (aggregate opinion negative or disputed)"
                        removed += 1
                    continue
                if cur is None:
                    s.add(Entry(bank_id=bank_id, signal=sig, value=k, payload=value if k != value else None,
                                tags=info["tags"], external_id=key[:200], media_key=mk, extra=extra, added_by=by,
                                added_at=now, updated_at=now, disabled=False))
                    added += 1
                    continue
                if cur.removed_at is not None:
                    if cur.removed_by != by:  # removed here by a person: stays removed
                        continue
                    cur.removed_at = cur.removed_by = cur.removed_reason = None
                cur.tags, cur.external_id, cur.media_key = info["tags"], key[:200], mk
                cur.extra = {**(cur.extra or {}), **extra}
                updated += 1
            for e in have.values():  # deleted, or no longer in the record
                if e.removed_at is None:
                    e.removed_at, e.removed_by = now, by
                    e.removed_reason = f"deleted on {x.api} (record {key})"[:500]
                    removed += 1
            s.flush()
        row.checkpoint = batch.get("checkpoint") if isinstance(batch.get("checkpoint"), dict) else row.checkpoint
        row.last_fetch_at = now
        if added or updated:
            changes.note(s, "exchange", x.local_bank)
        if added or updated or removed:
            audit.record(store, by, "exchange.fetch", "exchange", x.name,
                         {"added": added, "updated": updated, "removed": removed}, session=s)
        res.checkpoint = row.checkpoint
    res.batches += 1
    res.added += added
    res.updated += updated
    res.removed += removed


__all__ = ["APIS", "FetchResult", "add", "exchange_python", "fetch", "list_exchanges", "remove"]
