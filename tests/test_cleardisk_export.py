"""The police export is written straight into its destination (0600), never through a temp folder, from the
API and from the library (issue 16, item 3). Both stores; a generated benign picture as review media."""

from __future__ import annotations

import io
import os
import stat
import tempfile
import zipfile

import pytest
from test_cleardisk_scan import _clear_pictures
from test_takedown import get, mail_settings, make_report

from vigie.actions import escalation
from vigie.review.media import store_media

import factory


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    t = tmp_path / "tmp"
    t.mkdir()
    monkeypatch.setenv("TMPDIR", str(t))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return t


def _with_media(store) -> tuple[object, bytes]:
    settings = mail_settings(store, None)
    ids = make_report(store)
    data = factory.save(factory.picture(7), "PNG")
    store_media(store, settings, get(store, ids["unknown"]).sha256, data)
    return settings, data


def test_export_written_straight_to_its_destination(store, tmp_path, tmpdir_env, media_key):
    settings, data = _with_media(store)
    dest = tmp_path / "case" / "esc.zip"
    res = escalation.export_escalation(store, settings, "VR-TEST1", dest, include_media=True, by="officer")
    assert res["media"] == 1 and res["path"] == str(dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert os.listdir(dest.parent) == ["esc.zip"]  # no .part left beside it
    assert os.listdir(tmpdir_env) == []
    z = zipfile.ZipFile(dest)
    assert data in [z.read(n) for n in z.namelist() if n.startswith("media/")]
    # the picture is in the zip the officer asked for, and nowhere else: not in clear in the data folder
    assert _clear_pictures([store.settings.data_dir, tmpdir_env], [data]) == []
    # a zip replacing an older, looser one is 0600 too
    os.chmod(dest, 0o644)
    escalation.export_escalation(store, settings, "VR-TEST1", dest, by="officer")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_export_api_never_touches_the_temp_folder(store, monkeypatch, tmpdir_env, media_key):
    from test_web_kit import make_kit, session_client

    app, clock, store = make_kit(store, monkeypatch)
    # a temp folder removed at once would hide what lay in it: keep whatever is made there
    monkeypatch.setattr(tempfile.TemporaryDirectory, "_rmtree", classmethod(lambda cls, name, **kw: None))
    _settings, data = _with_media(store)
    sup, _ = session_client(app, store, "supervisor", clock)
    r = sup.get("/api/v1/reports/VR-TEST1/escalation.zip?include_media=true")
    assert r.status_code == 200, r.text
    z = zipfile.ZipFile(io.BytesIO(r.content))
    assert data in [z.read(n) for n in z.namelist() if n.startswith("media/")]
    assert os.listdir(tmpdir_env) == []
    assert _clear_pictures([store.settings.data_dir, tmpdir_env], [data]) == []
