"""Property-based run of the whole OpenAPI document (schemathesis): no request, however odd, gets a 500.

Three callers: an API client with the match scope, an admin session (with its CSRF token), and nobody.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from vigie import accounts
from vigie.banks import service as banks
from vigie.banks.records import EntryData

from test_web_kit import make_kit, session_client

N_EXAMPLES = int(os.environ.get("VIGIE_SCHEMATHESIS_EXAMPLES", "15"))


@pytest.fixture
def kit(tmp_path, monkeypatch):
    from vigie.settings import Settings
    from vigie.store import Store

    store = Store.open(Settings(data_dir=tmp_path / "d", workers=1))
    app, clock, _ = make_kit(store, monkeypatch)
    banks.create_bank(store, "known")
    banks.import_entries(store, "known", [(1, EntryData("md5", "0" * 32)), (2, EntryData("pdq", "f" * 64))])
    _, secret = accounts.create_api_key(store, "platform", ["match"], "test")
    admin, csrf = session_client(app, store, "admin", clock)
    return app, store, secret, admin, csrf


def test_no_server_error_for_any_generated_request(kit):
    from schemathesis.checks import not_a_server_error

    app, store, secret, admin, csrf = kit
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    from collections import Counter

    failures: list[str] = []
    statuses: Counter = Counter()
    samples: list[str] = []
    calls = 0
    for op in schema.get_all_operations():
        operation = op.ok()

        @settings(max_examples=N_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            nonlocal calls
            for headers in ({"Authorization": f"Bearer {secret}"},
                            {"Cookie": f"vigie_session={admin.cookies.get('vigie_session')}", "X-CSRF-Token": csrf},
                            {}):
                calls += 1
                response = case.call(headers=headers)
                statuses[response.status_code // 100 * 100] += 1
                if response.status_code == 400 and len(samples) < 5:
                    samples.append(f"{case.method} {case.formatted_path} {response.text[:150]}")
                try:
                    case.validate_response(response, checks=[not_a_server_error])
                except Exception as exc:  # noqa: BLE001 - collect every failure, then report
                    failures.append(f"{case.method} {case.path} {headers.keys()}: {str(exc)[:300]}")

        operation.as_strategy()  # fail early on a broken schema
        from hypothesis import given

        given(operation.as_strategy())(run)()
    print(f"\nschemathesis: {len(list(schema.get_all_operations()))} operations, {calls} requests, "
          f"{len(failures)} server errors; statuses {dict(statuses)}; {samples}")
    assert calls > 100 and statuses[200] >= 10 and statuses[400] > 20  # the calls reach the app
    assert not failures, "\n".join(failures[:10])
