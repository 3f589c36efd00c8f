"""`vigie doctor` names VIGIE_* variables that are no setting (a typo silently ignored is a limit not set)."""

from __future__ import annotations

from vigie import doctor


def test_unknown_vigie_variables_are_warned_with_the_closest_setting():
    env = {"VIGIE_LOGIN_MAX_FAILURE": "3", "VIGIE_DATA_DIR": "/x", "VIGIE_TEST_POSTGRES_URL": "pg", "HOME": "/"}
    checks = doctor._unknown_variables(env)
    assert [c.status for c in checks] == ["warn"]
    assert "VIGIE_LOGIN_MAX_FAILURE is not a Vigie setting" in checks[0].message
    assert "VIGIE_LOGIN_MAX_FAILURES" in checks[0].message
    assert doctor._unknown_variables({"VIGIE_REDIS_URL": "redis://x", "PATH": "/bin"}) == []


def test_run_includes_the_check(settings, monkeypatch):
    monkeypatch.setenv("VIGIE_NOT_A_THING", "1")
    msgs = [c.message for c in doctor.run(settings)]
    assert any("VIGIE_NOT_A_THING" in m for m in msgs)
