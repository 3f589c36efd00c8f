"""Run one python-threatexchange exchange fetch and print what it yields, a JSON line per batch.

This file is a script for the interpreter of the exchange environment (a virtual environment holding the
`threatexchange` package, see `vigie.sharing.exchanges`), never imported by Vigie itself: Vigie's own
environment does not depend on python-threatexchange (its pins, faiss and requests stay out of Vigie's).
It reads one JSON request on stdin:

    {"api": "ncmec" | "stop_ncii" | "tat" | "fb_threat_exchange", "collab": {...}, "credentials": {...},
     "base_url": "http://127.0.0.1:PORT/..." or null, "checkpoint": {...} or null, "max_batches": N or null}

builds python-threatexchange's own SignalExchangeAPI for it (its own client, its own paging, its own
checkpoint class), calls `fetch_iter(signal_types, checkpoint)` and prints, for each FetchDelta, one line

    {"records": [{"key": "...", "deleted": bool, "signals": [{"type": "pdq", "value": "...",
                   "opinions": [{"category": "POSITIVE_CLASS", "tags": [...]}]}], "meta": {...}}],
     "checkpoint": {...}}

where a record is deleted when the API's own `fetch_value_merge` says so (NCMEC tombstones, TAT `deleted`,
ThreatExchange `should_delete`, StopNCII hashes whose case status is Withdrawn or Deleted: see `_build`)
and its signals are those of the API's own `naive_convert_to_signal_type`.

`base_url` points the client at another server (tests: a fake one on 127.0.0.1). python-threatexchange hard-
codes its addresses in different places per client, so it is set at the client boundary: NCMEC's
`NCMECHashAPI._base_url`, StopNCII's `base_url_override`, TAT's `TATHashListAPI.BASE_URL` (an instance
attribute over the class one), ThreatExchange's `endpoint_override`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys


def _jsonable(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _jsonable(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (set, frozenset, list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def _signal_types():
    from threatexchange.signal_type.md5 import VideoMD5Signal
    from threatexchange.signal_type.pdq.signal import PdqSignal

    out = [PdqSignal, VideoMD5Signal]
    try:
        from threatexchange.extensions.vpdq.vpdq import VPDQSignal  # optional extension

        out.append(VPDQSignal)
    except Exception:  # noqa: BLE001 - not installed: vPDQ is then not fetched
        pass
    return out


def _build(req):
    import dacite

    name, base, creds = req["api"], req.get("base_url"), req.get("credentials") or {}
    collab_in = dict(req.get("collab") or {})
    if name == "ncmec":
        from threatexchange.exchanges.clients.ncmec import hash_api
        from threatexchange.exchanges.impl import ncmec_api as m

        env = hash_api.NCMECEnvironment[collab_in.pop("environment", "Industry")]
        collab = m.NCMECCollabConfig(name=req.get("name", "ncmec"), environment=env,
                                     only_esp_ids=set(collab_in.get("only_esp_ids") or ()))
        api = m.NCMECSignalExchangeAPI(collab, creds.get("user", ""), creds.get("password", ""))
        if base:
            original = api.get_client

            def get_client(environment, _orig=original):
                client = _orig(environment)
                client._base_url = base.rstrip("/")
                return client

            api.get_client = get_client
        return api, collab, m.NCMECCheckpoint
    if name == "stop_ncii":
        from threatexchange.exchanges.clients.stopncii import api as client_mod
        from threatexchange.exchanges.collab_config import CollaborationConfigBase
        from threatexchange.exchanges.impl import stop_ncii_api as m

        # python-threatexchange (up to 1.2.17 at least) means to drop a hash whose case status is Withdrawn or
        # Deleted ("should be deleted by client", its client says) but compares the hash value, not the status:
        # the status is checked here too, so a withdrawn hash is a delete.
        original_mapping = m._get_delta_mapping
        gone = (client_mod.StopNCIICaseStatus.Withdrawn, client_mod.StopNCIICaseStatus.Deleted)

        def delta_mapping(record, _orig=original_mapping):
            key, metadata = _orig(record)
            return key, (None if record.hashStatus in gone else metadata)

        m._get_delta_mapping = delta_mapping
        collab = CollaborationConfigBase(name=req.get("name", "stop_ncii"), api=name, enabled=True)
        client = client_mod.StopNCIIAPI(creds.get("subscription_key", ""), creds.get("fetch_function_key", ""),
                                        base_url_override=base.rstrip("/") if base else None)
        return m.StopNCIISignalExchangeAPI(collab, client), collab, m.StopNCIICheckpoint
    if name == "tat":
        from threatexchange.exchanges.collab_config import CollaborationConfigBase
        from threatexchange.exchanges.impl import techagainstterrorism_api as m

        collab = CollaborationConfigBase(name=req.get("name", "tat"), api=name, enabled=True)
        api = m.TATSignalExchangeAPI(creds.get("username", ""), creds.get("password", ""))
        if base:
            original = api.get_client

            def get_client(_orig=original):
                client = _orig()
                client.BASE_URL = base.rstrip("/") + "/"
                return client

            api.get_client = get_client
        return api, collab, m.TATCheckpoint
    if name == "fb_threat_exchange":
        from threatexchange.exchanges.clients.fb_threatexchange import api as te_api
        from threatexchange.exchanges.impl import fb_threatexchange_api as m

        collab = dacite.from_dict(m.FBThreatExchangeCollabConfig,
                                  {"name": req.get("name", "te"), **collab_in},
                                  config=dacite.Config(cast=[set, tuple]))
        client = te_api.ThreatExchangeAPI(creds.get("api_token", ""),
                                          endpoint_override=base.rstrip("/") if base else None)
        return m.FBThreatExchangeSignalExchangeAPI(client, collab), collab, m.FBThreatExchangeCheckpoint
    raise SystemExit(f"unknown exchange api {name!r}")


def _key(k) -> str:
    if isinstance(k, tuple):
        return ":".join(str(x) for x in k)
    return str(k)


def main() -> None:
    import dacite

    req = json.loads(sys.stdin.read())
    api, collab, ck_cls = _build(req)
    types = _signal_types()
    ck = req.get("checkpoint")
    checkpoint = dacite.from_dict(ck_cls, ck, config=dacite.Config(cast=[set, tuple])) if ck else None
    limit = req.get("max_batches")
    for n, delta in enumerate(api.fetch_iter(types, checkpoint), start=1):
        records = []
        for k, v in delta.updates.items():
            merged = api.fetch_value_merge(None, v) if v is not None else None
            rec = {"key": _key(k), "deleted": merged is None, "signals": [], "meta": {}}
            if merged is not None:
                for st, by_value in api.naive_convert_to_signal_type(types, collab, {k: merged}).items():
                    for value, md in by_value.items():
                        ops = [{"category": o.category.name, "tags": sorted(str(t) for t in (o.tags or ()))}
                               for o in md.get_as_opinions()]
                        agg = md.get_as_aggregate_opinion().category.name
                        rec["signals"].append({"type": st.get_name(), "value": value, "opinions": ops,
                                               "aggregate": agg})
                raw = _jsonable(merged)
                if isinstance(raw, dict):  # what the record says besides its signals (NCMEC: classification)
                    rec["meta"] = {x: raw[x] for x in ("classification", "member_id", "entry_type", "fingerprints")
                                   if x in raw}
            records.append(rec)
        print(json.dumps({"records": records, "checkpoint": _jsonable(delta.checkpoint)}), flush=True)
        if limit and n >= limit:
            break


if __name__ == "__main__":
    main()
