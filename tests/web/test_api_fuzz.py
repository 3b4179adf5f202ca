"""The API's OpenAPI schema fuzzed with schemathesis: whatever a client sends (bad paths, bad headers,
any token or none; cases that fit the schema and, where an operation has parameters, cases that do
not), the answer is never a server error.

Each operation's cases come from schemathesis' hypothesis strategy (driven here rather than through
its pytest plugin, so the runtime database fixture stays an ordinary fixture)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from xray_web.app import create_app


def test_no_input_gets_a_server_error(world):
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(world.sources))
    tokens = (None, "xr_forged", world.tokens["ada"], world.tokens["operator"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 14  # every operation of the API
    calls = []
    for operation in operations:

        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if operation.path_parameters else [])
        cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes))

        @given(case=cases)
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            for token in tokens:
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                response = case.call_and_validate(headers=headers, checks=[not_a_server_error],
                                                  timeout=None)  # no wall-clock limit
                calls.append(response.status_code)

        fuzz()
    assert len(calls) >= 4 * len(operations) and max(calls) < 500
