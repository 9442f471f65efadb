"""schemathesis against the service's own OpenAPI description, over real HTTP to a uvicorn server:
every operation, generated from the schema (positive and negative data), must answer without a
5xx and as documented (status codes, content types, headers, the error schema)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi import checks as oa_checks

from tests.security.conftest import Lab, serve
from webcallback.config import load_settings
from webcallback.web.app import create_app
from webcallback.web.openapi import openapi_document

EXAMPLES = int(os.environ.get("WEBCALLBACK_SCHEMATHESIS_EXAMPLES", "600"))

# The whole surface, with the limits off so that generated requests reach the deep code paths
# rather than stopping at a 429 (the limits have their own tests).
FUZZ_ENV = {
    "auth__allow_password_over_http": "true",
    "security__lockout__max_failures_per_user": "0",
    "security__lockout__max_failures_per_ip": "0",
    "security__limits__requests_per_minute_per_user": "0",
    "security__limits__requests_per_minute_per_ip": "0",
    "security__limits__concurrent_callbacks_per_user": "0",
    "security__limits__callbacks_per_day": "0",
}


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("fuzz")
    lab = Lab(f"sqlite:///{tmp / 'fuzz.db'}", tmp, **FUZZ_ENV)
    # The spec's example user, so that the schema's examples reach the authenticated paths.
    enc, kid = lab.services.cipher.encrypt("johndow", "secretW0rd")
    lab.services.accounts.add("johndow", password_enc=enc, key_id=kid, balance=Decimal(1000))
    with serve(create_app(lab.services)) as url:
        yield url
    lab.close()


# The document as the server builds it from these settings; `test_served_document` checks that
# `GET /openapi.json` serves exactly this.
DOCUMENT = openapi_document(
    load_settings(os.devnull, {f"WEBCALLBACK_{k.upper()}": v for k, v in FUZZ_ENV.items()})
)
schema = schemathesis.openapi.from_dict(DOCUMENT)


def test_served_document(fuzz_url: str) -> None:
    import httpx

    assert httpx.get(fuzz_url + "/openapi.json").json() == DOCUMENT


@pytest.mark.long
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_openapi_conformance(case: schemathesis.Case[Any], fuzz_url: str) -> None:
    case.call_and_validate(
        base_url=fuzz_url,
        # Schema-valid data is not expected to be accepted: almost any generated request is
        # rightly refused (unknown user, number policy). Everything else is checked.
        excluded_checks=[oa_checks.positive_data_acceptance],
    )
