"""Schemathesis over the live gateway's own OpenAPI document: inputs drawn from the schema (valid and invalid) for
every operation, as a logged-in city committee; no request may get a server error, and every refusal under /api
is the typed `{ok: false, error: {code, …}}`. Derandomised, a few examples per operation."""
from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from contracts import activities, liaison, membership
from contracts.queries import QUERIES
from gongdi.sheets.export import EXPORTS
from tests.conftest import Servers
from tests.integration.gateway import Gateway, running_gateway

EXAMPLES = 10  # per operation, valid and invalid inputs mixed
SEED = 20240701
# The live stream never ends, and logging out would end the session every other request uses.
NOT_FUZZED = ["/api/live", "/api/logout"]
CONFIG = {
    "seed": SEED,
    "generation": {"database": "none"},
    "request-timeout": 15,
}


@pytest.fixture(scope="module")
def gw(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(servers, tmp_path_factory.mktemp("gateway-schema")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def gateway_schema(gw: Gateway) -> schemathesis.BaseSchema:
    config = schemathesis.config.SchemathesisConfig.from_dict(CONFIG)
    return schemathesis.openapi.from_url(f"{gw.url}/openapi.json", config=config)


@pytest.fixture(scope="module")
def bearer(gw: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.token('city')}"}


def operations() -> list[tuple[str, str]]:
    """What the gateway's document must describe, from the contracts (checked against the live document below):
    (method, path) of every operation fuzzed."""
    contracts = (membership, activities, liaison)
    ops = [("POST", f"/api/commands/{c.SERVICE}/{name}") for c in contracts for name in c.COMMANDS]
    ops += [("GET", f"/api/views/{name}") for name in QUERIES]
    ops += [("GET", f"/api/status/{c.SERVICE}") for c in contracts]
    ops += [("GET", "/api/history/{kind}/{ident}")]
    ops += [("GET", f"/api/export/{name}") for name in EXPORTS]
    ops += [("POST", "/api/import/{kind}"), ("GET", "/api/import/{kind}/template")]
    ops += [("GET", "/api/report/{year}")]
    return [*ops, ("POST", "/api/login"), ("GET", "/api/me"), ("GET", "/health"), ("GET", "/metrics")]


OPERATIONS = operations()


def test_the_fuzzed_operations_are_every_operation_of_the_live_document(gateway_schema: schemathesis.BaseSchema):
    documented = {(op.ok().method.upper(), op.ok().path) for op in gateway_schema.get_all_operations()}
    assert documented - {(m, p) for m, p in documented if p in NOT_FUZZED} == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_input_gets_a_server_error(gateway_schema: schemathesis.BaseSchema, bearer: dict[str, str], method: str,
                                      path: str):
    operation = gateway_schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    seen: list[int] = []

    @hypothesis.given(case=cases)
    @hypothesis.settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                         phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def no_server_error(case: schemathesis.Case) -> None:
        response = case.call(headers=bearer, timeout=15)
        seen.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, case.as_curl_command()
        if case.path.startswith("/api/") and response.status_code >= 400:
            body = response.json()
            assert body.get("ok") is False and (body.get("error") or {}).get("code"), (case.as_curl_command(), body)

    no_server_error()
    assert seen, "no request was made"
