"""Bank sharing: signatures (sign, verify, tamper, another key), the change feed, and two Vigie instances
on 127.0.0.1 (A publishes, B subscribes and syncs; A withdraws a false positive; B's copy is
tombstoned; a tampered batch and a batch signed by another key are refused and change nothing).
Test data: SHA-256 and MD5 of benign strings."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vigie import accounts, audit
from vigie.banks import service as banks
from vigie.banks.verdict import Verdict
from vigie.settings import Settings
from vigie.sharing import SharingError, feed, keys, subscriber

from servers import serving

BASELINE = Verdict(legality="baseline", age_band="prepubescent", severity="sexual_activity")
OTHER = Verdict(legality="national", jurisdictions=("FR",), age_band="pubescent", severity="lascivious")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def other_settings(tmp_path, name: str) -> Settings:
    return Settings(data_dir=tmp_path / name, workers=1)


# ---- keys ----------------------------------------------------------------------------------------


def test_key_is_made_once_private_and_exported(settings):
    pub = keys.public_key_b64(settings)
    path = keys.key_path(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert keys.public_key_b64(settings) == pub
    assert len(base64.b64decode(pub)) == 32
    assert len(keys.key_id(pub)) == 16


def test_sign_verify_tamper_and_other_key(settings, tmp_path):
    batch = {"v": 1, "bank": "b", "entries": [{"value": sha("a benign string"), "op": "add"}]}
    doc = keys.sign(settings, batch)
    pub = keys.public_key_b64(settings)
    assert keys.verify(doc, pub) == batch
    tampered = dict(doc, batch=doc["batch"].replace('"add"', '"remove"'))
    with pytest.raises(SharingError) as e:
        keys.verify(tampered, pub)
    assert e.value.code == "bad_signature"
    other = other_settings(tmp_path, "other")
    with pytest.raises(SharingError) as e:
        keys.verify(keys.sign(other, batch), pub)
    assert e.value.code == "bad_signature"
    with pytest.raises(SharingError):
        keys.verify({"batch": doc["batch"]}, pub)  # no signature at all
    assert keys.canonical({"b": 1, "a": [1, "é"]}) == b'{"a":[1,"\\u00e9"],"b":1}'


# ---- the feed ------------------------------------------------------------------------------------


def test_feed_numbers_additions_category_changes_and_removals(store):
    banks.create_bank(store, "known")
    a, b = sha("benign one"), sha("benign two")
    banks.add_entry(store, "known", "sha256", a, verdict=BASELINE)
    banks.add_entry(store, "known", "sha256", b, verdict=BASELINE)
    banks.add_entry(store, "known", "sha256", sha("removed before publishing"))
    banks.remove_entry(store, "known", sha("removed before publishing"))
    feed.publish(store, "known", by="admin")
    c1 = feed.changes(store, "known", 0)
    assert [(x["op"], x["value"]) for x in c1["entries"]] == [("add", a), ("add", b)]
    assert c1["cursor_to"] == 2 and c1["more"] is False
    assert feed.changes(store, "known", 2)["entries"] == []
    # page size
    page = feed.changes(store, "known", 0, limit=1)
    assert page["more"] is True and page["cursor_to"] == 1
    # a category change (a merge bringing a new verdict) and a removal are changes
    banks.add_entry(store, "known", "sha256", a, verdict=OTHER)
    banks.remove_entry(store, "known", b, reason="false positive")
    c2 = feed.changes(store, "known", 2)
    got = {x["value"]: x for x in c2["entries"]}
    assert got[a]["op"] == "add" and got[a]["verdict"]["legality"] == "national"
    assert got[b]["op"] == "remove"
    assert c2["cursor_from"] == 2 and c2["cursor_to"] == 4
    # nothing changed: nothing new, and a full rescan gives nothing new either
    assert feed.refresh(store, "known", full=True) == 0
    assert feed.changes(store, "known", 4)["entries"] == []


def test_unpublished_bank_has_no_feed(store):
    banks.create_bank(store, "private")
    from vigie.errors import NotFound

    with pytest.raises(NotFound):
        feed.changes(store, "private", 0)


# ---- two instances -------------------------------------------------------------------------------



@pytest.fixture
def two(tmp_path, media_key):
    """Instance A served by uvicorn on 127.0.0.1; instance B a plain store (holding its key at A sealed)."""
    from vigie.store import Store
    from vigie.web import create_app

    sa, sb = other_settings(tmp_path, "a"), other_settings(tmp_path, "b")
    a, b = Store.open(sa), Store.open(sb)
    with serving(create_app(a, sa)) as base:
        yield base, a, sa, b, sb
    a.close()
    b.close()


def live_values(store, bank: str) -> set[str]:
    return {e.value for e in banks.iter_entries(store, bank)}


def matches(store, settings, value: str) -> list[str]:
    from vigie.matching import Matcher, Query

    m = Matcher(store, settings)
    m.refresh(save=False)
    return [x.bank for x in m.match([Query.from_hash(value, "sha256")])[0].matches]


def test_two_instances_publish_sync_withdraw_tamper(two, tmp_path):
    url, a, sa, b, sb = two
    values = [sha(f"benign shared string {i}") for i in range(5)]
    banks.create_bank(a, "hotline-a")
    for i, v in enumerate(values):
        banks.add_entry(a, "hotline-a", "sha256", v, verdict=BASELINE, external_id=f"A-{i}", tags=["shared"])
    banks.add_entry(a, "hotline-a", "md5", md5("benign md5 string"))
    banks.create_bank(a, "not-shared")
    banks.add_entry(a, "not-shared", "sha256", sha("private benign string"))
    feed.publish(a, "hotline-a", by="admin")
    _key, secret = accounts.create_api_key(a, "partner B", ["banks:hotline-a"], "admin")
    _k2, match_only = accounts.create_api_key(a, "match only", ["match"], "admin")

    # The public key is public; B is configured with it (given out of band).
    r = httpx.get(f"{url}/api/v1/sharing/key")
    assert r.status_code == 200
    pub_a = r.json()["public_key"]
    assert pub_a == keys.public_key_b64(sa)

    # Access: no key, a key without the bank's scope, an unpublished bank.
    changes = f"{url}/api/v1/sharing/changes"
    assert httpx.get(changes, params={"bank": "hotline-a"}).status_code == 401
    r = httpx.get(changes, params={"bank": "hotline-a"}, headers={"Authorization": f"Bearer {match_only}"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "scope_missing"
    r = httpx.get(changes, params={"bank": "not-shared"}, headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 403

    subscriber.subscribe(b, "a", url, "hotline-a", "from-a", secret, pub_a, by="admin")
    res = subscriber.sync(b, sb, "a")
    assert res.ok, res.error
    assert res.added == 6 and res.cursor == 6
    assert live_values(b, "from-a") == set(values) | {md5("benign md5 string")}
    got = {e.value: e for e in banks.iter_entries(b, "from-a")}
    e0 = got[values[0]]
    assert e0.added_by.startswith("sharing:vigie-")
    prov = e0.extra["provenance"]
    assert prov["publisher"] == feed.publisher_name(sa) and prov["key_id"] == keys.key_id(pub_a)
    assert isinstance(prov["original_id"], int) and prov["received_at"]
    assert e0.external_id == "A-0" and e0.verdict.legality == "baseline" and e0.tags == ["shared"]
    assert matches(b, sb, values[0]) == ["from-a"]

    # Nothing new: a second sync applies nothing.
    again = subscriber.sync(b, sb, "a")
    assert again.ok and again.added == again.removed == again.updated == 0 and again.cursor == 6

    # A withdraws a false positive and recategorises another; B follows.
    banks.remove_entry(a, "hotline-a", values[1], signal="sha256", reason="false positive")
    banks.add_entry(a, "hotline-a", "sha256", values[2], verdict=OTHER)
    res = subscriber.sync(b, sb, "a")
    assert res.ok and res.removed == 1 and res.updated == 1, res
    assert values[1] not in live_values(b, "from-a")
    tomb = [e for e in banks.iter_entries(b, "from-a", include_removed=True) if e.value == values[1]]
    assert tomb and tomb[0].removed
    assert matches(b, sb, values[1]) == []
    assert {e.value: e for e in banks.iter_entries(b, "from-a")}[values[2]].verdict.legality == "national"

    # A tampered batch (one value altered in transit) is refused and nothing changes.
    banks.add_entry(a, "hotline-a", "sha256", sha("benign string added later"))
    before = (live_values(b, "from-a"), subscriber.list_subscriptions(b)[0]["cursor"])

    def tamper(request: httpx.Request) -> httpx.Response:
        real = httpx.get(str(request.url), headers=dict(request.headers))
        doc = real.json()
        doc["batch"] = doc["batch"].replace(sha("benign string added later"), sha("something else"))
        return httpx.Response(200, json=doc)

    with httpx.Client(transport=httpx.MockTransport(tamper)) as c:
        res = subscriber.sync(b, sb, "a", client=c)
    assert not res.ok and res.error["code"] == "bad_signature"
    assert (live_values(b, "from-a"), subscriber.list_subscriptions(b)[0]["cursor"]) == before
    assert subscriber.list_subscriptions(b)[0]["last_error"]["code"] == "bad_signature"

    # A batch signed by another key (a well-formed batch from an impostor) is refused too.
    impostor = other_settings(tmp_path, "impostor")

    def impostor_answer(request: httpx.Request) -> httpx.Response:
        real = httpx.get(str(request.url), headers=dict(request.headers))
        batch = keys.verify(real.json(), pub_a)
        batch["entries"].append({"seq": batch["cursor_to"] + 1, "op": "add", "id": 1, "key": sha("x"),
                                 "signal": "sha256", "value": sha("benign injected string"), "at": None,
                                 "verdict": None, "tags": [], "external_id": None})
        batch["cursor_to"] += 1
        return httpx.Response(200, json=keys.sign(impostor, batch))

    with httpx.Client(transport=httpx.MockTransport(impostor_answer)) as c:
        res = subscriber.sync(b, sb, "a", client=c)
    assert not res.ok and res.error["code"] == "bad_signature"
    assert live_values(b, "from-a") == before[0]

    # A correctly signed batch that does not continue our cursor (replayed, or going backwards) is refused.
    def rewind(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params, cursor="0")
        return httpx.get(str(request.url.copy_with(params=params)), headers=dict(request.headers))

    with httpx.Client(transport=httpx.MockTransport(rewind)) as c:
        res = subscriber.sync(b, sb, "a", client=c)
    assert not res.ok and res.error["code"] == "bad_batch"
    assert live_values(b, "from-a") == before[0]

    # The genuine feed still goes through, and the audit trails are intact.
    res = subscriber.sync(b, sb, "a")
    assert res.ok and res.added == 1
    assert sha("benign string added later") in live_values(b, "from-a")
    results = subscriber.sync_all(b, sb)
    assert [(x.name, x.ok) for x in results] == [("a", True)]
    assert audit.verify(a).ok and audit.verify(b).ok
    actions = {r.action for r in audit.iter_records(b)}
    assert {"sharing.subscribe", "sharing.sync", "sharing.refused"} <= actions


def test_stale_or_foreign_batch_is_refused(settings):
    pub = keys.public_key_b64(settings)
    kid = keys.key_id(pub)
    good = {"v": 1, "publisher": "p", "key_id": kid, "bank": "x", "cursor_from": 3, "cursor_to": 4, "more": False,
            "signed_at": feed._iso(feed.utcnow()), "entries": [{"seq": 4, "op": "add", "signal": "sha256",
                                                              "value": sha("benign")}]}
    subscriber.check_batch(good, kid, "x", 3)
    for change in ({"bank": "y"}, {"cursor_from": 2}, {"cursor_to": 2}, {"key_id": "0" * 16},
                   {"signed_at": "2000-01-01T00:00:00Z"}, {"entries": [{"seq": 9, "op": "add"}]},
                   {"entries": [{"seq": 4, "op": "delete", "signal": "sha256", "value": "x"}]}):
        with pytest.raises(SharingError) as e:
            subscriber.check_batch({**good, **change}, kid, "x", 3)
        assert e.value.code == "bad_batch", change


def test_unknown_key_is_refused_at_subscribe(store, media_key):
    with pytest.raises(Exception) as e:
        subscriber.subscribe(store, "x", "https://partner.example", "b", "local", "k", "not a key")
    assert getattr(e.value, "code", None) == "invalid_input"
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    subscriber.subscribe(store, "x", "https://partner.example", "b", "local", "k", base64.b64encode(raw).decode())
    assert json.dumps(subscriber.list_subscriptions(store))


# ---- hostile partners ----------------------------------------------------------------------------


def _fake_partner(signer: Settings):
    """A partner on 127.0.0.1 whose answer depends on the bank asked for: deep nesting, not JSON, not an
    object, a signed batch nested deep, a signed batch with a cursor past 64 bits, and one good batch."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    deep = "[" * 100_000 + "]" * 100_000

    def batch(bank: str, cursor: int, **change) -> dict:
        b = {"v": 1, "publisher": "fake", "key_id": keys.key_id(keys.public_key_b64(signer)), "bank": bank,
             "cursor_from": cursor, "cursor_to": cursor + 1, "more": False, "signed_at": feed._iso(feed.utcnow()),
             "entries": [{"seq": cursor + 1, "op": "add", "id": 1, "signal": "sha256",
                          "value": sha("benign partner string"), "verdict": None, "tags": []}]}
        return {**b, **change}

    async def changes(request):
        bank, cursor = request.query_params["bank"], int(request.query_params["cursor"])
        if bank == "deep":
            return Response(deep, media_type="application/json")
        if bank == "notjson":
            return Response("<html>hello</html>", media_type="text/html")
        if bank == "list":
            return JSONResponse([1, 2, 3])
        if bank == "deep-signed":
            data = ('{"v":1,"x":' + deep + "}").encode()
            sig = base64.b64encode(keys.signing_key(signer).sign(data)).decode()
            return JSONResponse({"batch": data.decode(), "signature": sig, "key_id": "x"})
        if bank == "huge":
            return JSONResponse(keys.sign(signer, batch(bank, cursor, cursor_to=10**30,
                                                        entries=[])))
        if bank == "error-deep":
            return Response('{"error":' + deep + "}", status_code=500, media_type="application/json")
        return JSONResponse(keys.sign(signer, batch(bank, cursor)))

    return Starlette(routes=[Route(subscriber.PATH, changes)])


def test_hostile_partners_are_recorded_and_never_stop_the_others(store, tmp_path, media_key):
    """A partner answering deeply nested JSON (or anything malformed) is refused on its own subscription,
    with a record, and every other partner's sync still runs (issue 16)."""
    signer = other_settings(tmp_path, "fake-partner")
    pub = keys.public_key_b64(signer)
    hostile = {"a-deep": "deep", "b-notjson": "notjson", "c-list": "list", "d-deep-signed": "deep-signed",
               "e-huge": "huge", "f-error-deep": "error-deep"}
    with serving(_fake_partner(signer)) as url:
        for name, bank in {**hostile, "z-good": "good"}.items():
            subscriber.subscribe(store, name, url, bank, f"local-{name}", "partner-key", pub, by="admin")
        results = {r.name: r for r in subscriber.sync_all(store, store.settings)}
    assert list(results) == [*hostile, "z-good"]
    assert results["z-good"].ok and results["z-good"].added == 1, results["z-good"].error
    assert sha("benign partner string") in live_values(store, "local-z-good")
    codes = {n: results[n].error["code"] for n in hostile}
    assert all(not results[n].ok for n in hostile)
    assert codes == {"a-deep": "bad_answer", "b-notjson": "bad_answer", "c-list": "bad_answer",
                     "d-deep-signed": "bad_answer", "e-huge": "bad_answer", "f-error-deep": "sync_failed"}, codes
    subs = {x["name"]: x for x in subscriber.list_subscriptions(store)}
    for n in hostile:
        assert subs[n]["last_error"]["code"] == codes[n] and subs[n]["cursor"] == 0, n
        assert not live_values(store, f"local-{n}")
    assert subs["z-good"]["last_error"] is None and subs["z-good"]["cursor"] == 1
    refused = [r for r in audit.iter_records(store) if r.action in ("sharing.refused", "sharing.sync_failed")]
    assert {r.object_id for r in refused} == set(hostile)
    assert audit.verify(store).ok
