"""Exchange subscriptions through python-threatexchange's own clients (vigie.sharing.exchanges), against fake
NCMEC, StopNCII and Tech Against Terrorism servers on 127.0.0.1 (tests/exchange_fakes.py) that answer as
each API documents. python-threatexchange runs in the test venv built by tests/parity_venv.py.

Each test: a fetch, a crash in the middle (an exception while a batch is applied), a resumed fetch that
neither loses nor repeats anything, then the exchange's deletes and disputes as removals.
"""

from __future__ import annotations

import hashlib
import random
import time

import pytest
from exchange_fakes import FakeNcmec, FakeStopNcii, FakeTat
from parity_venv import parity_python
from sqlalchemy import select

from vigie.banks import changes
from vigie.sharing import exchanges
from vigie.sharing.exchange_models import ExchangeSubscription
from vigie.store.models import Entry


@pytest.fixture(scope="module")
def pytx():
    return parity_python("threatexchange", "threatexchange.exchanges.impl.ncmec_api")


def hex64(seed: int) -> str:
    return f"{random.Random(seed).getrandbits(256):064x}"


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha1(s: str) -> str:
    return hashlib.sha1(s.encode()).hexdigest()


def live(store, bank: str) -> dict[tuple[str, str], Entry]:
    with store.sessions() as s:
        from vigie.store.models import Bank

        bid = s.scalar(select(Bank.id).where(Bank.name == bank))
        return {(e.signal, e.value): e for e in s.scalars(select(Entry).where(Entry.bank_id == bid))
                if e.removed_at is None}


def crash_on(monkeypatch, nth_with_records: int):
    """Make the `nth_with_records` batch that carries records fail while it is applied (a crash mid-fetch)."""
    real = exchanges._apply_batch
    seen = {"n": 0}

    def apply(store, x, batch, res):
        if batch.get("records"):
            seen["n"] += 1
            if seen["n"] == nth_with_records:
                raise RuntimeError("simulated crash while applying a batch")
        return real(store, x, batch, res)

    monkeypatch.setattr(exchanges, "_apply_batch", apply)
    return lambda: monkeypatch.setattr(exchanges, "_apply_batch", real)


def test_ncmec_fetch_crash_resume_and_deletes(store, media_key, pytx, monkeypatch):
    fake = FakeNcmec(user="hotline", password="s3cret")
    now = int(time.time())
    for i in range(5):  # five image entries of harmless strings' digests, ten minutes apart, one video
        fake.add(f"img{i}", now - 4000 + 600 * i, classification="A1" if i % 2 else "B2",
                 fingerprints={"md5": md5(f"pic{i}").upper(), "sha1": sha1(f"pic{i}"), "pdq": hex64(i),
                               "pdna": "0,1,2"})
    fake.add("vid0", now - 3500, kind="video", classification="A2", fingerprints={"md5": md5("vid0")})
    with fake.serve() as url:
        exchanges.add(store, "ncmec", "ncmec", "ncmec-bank", {"user": "hotline", "password": "s3cret"},
                      config={"environment": "NGO"}, base_url=url)
        with store.sessions() as s:  # credentials sealed, never in clear
            assert "s3cret" not in s.scalar(select(ExchangeSubscription.credentials))
        restore = crash_on(monkeypatch, 2)
        before = changes.latest(store)
        r1 = exchanges.fetch(store, "ncmec", python=pytx)
        assert not r1.ok and r1.error["code"] == "fetch_failed" and "simulated crash" in r1.error["message"]
        assert r1.added > 0 and r1.checkpoint is not None
        assert changes.latest(store) > before  # the applied batch noted its bank change (re-match)
        got1 = live(store, "ncmec-bank")
        assert 0 < len(got1) < 16
        restore()
        r2 = exchanges.fetch(store, "ncmec", python=pytx)
        assert r2.ok, r2.error
        assert r2.updated == 0  # the resumed fetch started after the last applied batch: nothing twice
        got = live(store, "ncmec-bank")
        # 5 images x (pdq, md5, sha1) + the video's md5; PhotoDNA is not a Vigie signal
        assert len(got) == 16 and r1.added + r2.added == 16
        assert ("pdq", hex64(3)) in got and ("md5", md5("pic3")) in got and ("md5", md5("vid0")) in got
        e = got[("pdq", hex64(3))]
        assert e.tags == ["A1"] and e.media_key == "ncmec:42-img3" and e.added_by == "exchange:ncmec"
        assert exchanges.list_exchanges(store)[0]["checkpoint"]["get_entries_max_ts"] > 0
        # NCMEC deletes img1 and the video; a later fetch removes them and nothing else
        # (NCMEC's `from`/`to` is the time of the change: these happen after the checkpoint, and python-
        # threatexchange asks only up to five seconds ago, so the test waits for the clock to pass them)
        ck = exchanges.list_exchanges(store)[0]["checkpoint"]["get_entries_max_ts"]
        fake.add("img1", ck + 1, deleted=True)
        fake.add("vid0", ck + 2, kind="video", deleted=True)
        fake.add("img9", ck + 3, fingerprints={"pdq": hex64(9)})
        while time.time() < ck + 10:
            time.sleep(0.5)
        r3 = exchanges.fetch(store, "ncmec", python=pytx)
        assert r3.ok, r3.error
        got = live(store, "ncmec-bank")
        assert r3.removed == 4 and r3.added == 1
        assert ("pdq", hex64(1)) not in got and ("md5", md5("vid0")) not in got and ("pdq", hex64(9)) in got
        assert len(got) == 13


def test_stopncii_fetch_resume_disputes(store, media_key, pytx, monkeypatch):
    fake = FakeStopNcii(function_key="fk1", subscription_key="sk1")
    for i in range(5):
        fake.add(hex64(100 + i), 1_700_000_000 + i)
    fake.add(md5("video"), 1_700_000_010, signal="VideoMD5")
    with fake.serve() as url:
        exchanges.add(store, "sncii", "stop_ncii", "ncii", {"fetch_function_key": "fk1", "subscription_key": "sk1"},
                      base_url=url + "/v1")
        restore = crash_on(monkeypatch, 2)
        r1 = exchanges.fetch(store, "sncii", python=pytx)
        assert not r1.ok and r1.added == 2
        restore()
        r2 = exchanges.fetch(store, "sncii", python=pytx)
        assert r2.ok, r2.error
        assert r2.added == 4 and r2.updated == 0
        assert exchanges.list_exchanges(store)[0]["checkpoint"]["update_time"] == 1_700_000_011
        got = live(store, "ncii")
        assert len(got) == 6 and ("md5", md5("video")) in got
        # Partners say one hash is not NCII (NotBlocked): disputed, removed here
        fake.add(hex64(102), 1_700_000_020, feedbacks=[{"feedbackValue": "NotBlocked", "tags": [], "source": "x"}])
        r3 = exchanges.fetch(store, "sncii", python=pytx)
        assert r3.ok, r3.error
        got = live(store, "ncii")
        assert ("pdq", hex64(102)) not in got and len(got) == 5 and r3.removed == 1
        # a person's removal stays; the exchange's own removal is revived when the hash comes back positive
        fake.add(hex64(102), 1_700_000_030, feedbacks=[{"feedbackValue": "Blocked", "tags": ["ncii"], "source": "x"}])
        r4 = exchanges.fetch(store, "sncii", python=pytx)
        assert r4.ok and ("pdq", hex64(102)) in live(store, "ncii")
        assert "ncii" in live(store, "ncii")[("pdq", hex64(102))].tags
        # the person behind a hash withdraws it: StopNCII says the client should delete it
        fake.add(hex64(103), 1_700_000_040, status="Withdrawn")
        fake.add(md5("video"), 1_700_000_041, signal="VideoMD5", status="Deleted")
        r5 = exchanges.fetch(store, "sncii", python=pytx)
        assert r5.ok and r5.removed == 2
        got = live(store, "ncii")
        assert ("pdq", hex64(103)) not in got and ("md5", md5("video")) not in got and len(got) == 4


def test_tat_fetch_and_deletes(store, media_key, pytx):
    fake = FakeTat(username="tat-user", password="tat-pass")
    for i in range(3):
        fake.add(i + 1, hex64(200 + i), 1_700_000_000.0 + i)
    fake.add(4, md5("tat-video"), 1_700_000_005.0, algorithm="MD5", file_type="mp4")
    fake.add(5, md5("tat-picture"), 1_700_000_006.0, algorithm="MD5", file_type="jpg")  # pytx takes MD5 of videos only
    with fake.serve() as url:
        exchanges.add(store, "tat", "tat", "tat-bank", {"username": "tat-user", "password": "tat-pass"}, base_url=url)
        r1 = exchanges.fetch(store, "tat", python=pytx)
        assert r1.ok, r1.error
        got = live(store, "tat-bank")
        assert set(got) == {("pdq", hex64(200)), ("pdq", hex64(201)), ("pdq", hex64(202)), ("md5", md5("tat-video"))}
        fake.add(2, hex64(201), 1_700_000_010.0, deleted=True)
        r2 = exchanges.fetch(store, "tat", python=pytx)
        assert r2.ok and r2.removed == 1 and r2.added == 0 and r2.updated == 0
        assert ("pdq", hex64(201)) not in live(store, "tat-bank")


def test_add_refuses_bad_input_and_remove_forgets(store, media_key):
    from vigie.errors import UsageError

    with pytest.raises(UsageError) as e:
        exchanges.add(store, "x", "nope", "b", {})
    assert e.value.code == "unknown_exchange"
    with pytest.raises(UsageError) as e:
        exchanges.add(store, "x", "ncmec", "b", {"user": "u"})
    assert e.value.code == "missing_credentials"
    exchanges.add(store, "x", "ncmec", "b", {"user": "u", "password": "p"}, config={"environment": "NGO"})
    assert [x["name"] for x in exchanges.list_exchanges(store)] == ["x"]
    r = exchanges.fetch(store, "x", python="/nonexistent/python")
    assert not r.ok and r.error["code"] == "no_exchange_env"
    exchanges.remove(store, "x")
    assert exchanges.list_exchanges(store) == []


def test_unreachable_exchange_is_recorded_not_raised(store, media_key, pytx):
    from servers import free_port  # a port nothing listens on

    exchanges.add(store, "gone", "stop_ncii", "b", {"fetch_function_key": "a", "subscription_key": "b"},
                  base_url=f"http://127.0.0.1:{free_port()}/v1")
    r = exchanges.fetch(store, "gone", python=pytx)
    assert not r.ok and r.error["code"] == "fetch_failed"
    assert exchanges.list_exchanges(store)[0]["last_error"]["code"] == "fetch_failed"


def test_a_hanging_exchange_is_stopped_at_its_time_limit(store, media_key, pytx):
    """A server that accepts and never answers (some clients set no request timeout) costs the fetch its time
    limit, not forever: the driver is killed and the subscription says so."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        exchanges.add(store, "hang", "stop_ncii", "b", {"fetch_function_key": "a", "subscription_key": "b"},
                      base_url=f"http://127.0.0.1:{port}/v1")
        r = exchanges.fetch(store, "hang", python=pytx, timeout=4)
    finally:
        listener.close()
    assert not r.ok and r.error["code"] == "fetch_timeout"
    assert exchanges.list_exchanges(store)[0]["last_error"]["code"] == "fetch_timeout"


def test_one_fetcher_at_a_time_across_servers(store, media_key, pytx):
    """Two servers on one store (several `vigie serve` on PostgreSQL, or the CLI beside a server): while one
    holds the exchanges' lock, the other's fetch_all applies nothing and returns at once; once free, it fetches."""
    fake = FakeStopNcii(function_key="fk", subscription_key="sk")
    fake.add(hex64(11), 1_700_000_000)
    with fake.serve() as url:
        exchanges.add(store, "s", "stop_ncii", "ncii", {"fetch_function_key": "fk", "subscription_key": "sk"},
                      base_url=url + "/v1")
        with store.exclusive("exchanges") as mine:
            assert mine
            assert exchanges.fetch_all(store, python=pytx) == []
            assert live(store, "ncii") == {} and exchanges.list_exchanges(store)[0]["checkpoint"] is None
        got = exchanges.fetch_all(store, python=pytx)
    assert [r.ok for r in got] == [True] and ("pdq", hex64(11)) in live(store, "ncii")


def test_cli_exchange_add_list_fetch_remove(tmp_path, media_key, pytx, capsys, monkeypatch):
    """`vigie exchange add|list|fetch|remove --json` on the SQLite store, credentials on stdin."""
    import io
    import json

    from vigie.cli import main

    data = str(tmp_path / "data")

    def run(*args, stdin: str = ""):
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exc:
            main([*args, "--data-dir", data, "--json"])
        got = capsys.readouterr()
        return exc.value.code, [json.loads(x) for x in got.out.splitlines() if x.strip()], got.err

    fake = FakeStopNcii(function_key="fk", subscription_key="sk")
    fake.add(hex64(7), 1_700_000_000)
    with fake.serve() as url:
        rc, got, err = run("exchange", "add", "s", "--api", "stop_ncii", "--bank", "ncii", "--base-url", url + "/v1",
                           stdin="fetch_function_key=fk\nsubscription_key=sk\n")
        assert rc == 0 and got[0]["name"] == "s" and "sk" not in json.dumps(got), err
        rc, got, _ = run("exchange", "add", "t", "--api", "stop_ncii", "--bank", "ncii", stdin="")
        assert rc != 0 and got[0]["error"]["code"] == "missing_credentials"
        rc, got, err = run("exchange", "fetch", "s", "--python", str(pytx))
        assert rc == 0 and got[0]["added"] == 1, (got, err)
        rc, got, _ = run("exchange", "list")
        assert rc == 0 and got[0]["exchanges"][0]["checkpoint"]["update_time"] == 1_700_000_001
        rc, got, _ = run("exchange", "remove", "s")
        assert rc == 0 and got[0] == {"removed": "s"}
        rc, got, _ = run("exchange", "fetch", "s", "--python", str(pytx))
        assert rc != 0 and got[0]["error"]["code"] == "exchange_not_found"


def test_threatexchange_fetch_resume_deletes_and_non_malicious(store, media_key, pytx, monkeypatch):
    from exchange_fakes import FakeThreatExchange

    fake = FakeThreatExchange()
    for i in range(5):
        fake.add(i + 1, hex64(300 + i), 1_700_000_000 + i)
    fake.add(6, md5("te-video"), 1_700_000_006, type_="HASH_VIDEO_MD5")
    with fake.serve() as url:
        exchanges.add(store, "te", "fb_threat_exchange", "te-bank", {"api_token": fake.token},
                      config={"privacy_group": fake.group}, base_url=url)
        restore = crash_on(monkeypatch, 2)
        r1 = exchanges.fetch(store, "te", python=pytx)
        assert not r1.ok and r1.added == 2
        restore()
        r2 = exchanges.fetch(store, "te", python=pytx)
        assert r2.ok, r2.error
        got = live(store, "te-bank")
        # every update once: the resumed fetch may see the checkpoint's own second again (ThreatExchange's
        # start_time is inclusive), as an update of the entry already there, never a second entry
        assert len(got) == 6 and r1.added + r2.added == 6 and r2.updated <= 1
        assert got[("pdq", hex64(300))].tags == ["csam"]
        fake.add(2, hex64(301), 1_700_000_010, should_delete=True)
        fake.add(3, hex64(302), 1_700_000_011, status="NON_MALICIOUS")
        r3 = exchanges.fetch(store, "te", python=pytx)
        assert r3.ok, r3.error
        got = live(store, "te-bank")
        assert ("pdq", hex64(301)) not in got and ("pdq", hex64(302)) not in got and len(got) == 4
        assert r3.removed == 2
