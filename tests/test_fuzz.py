"""Schemathesis against the service's own OpenAPI schema: no 5xx, every response as documented."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402  (schemathesis brings hypothesis)

from api.app import create_app  # noqa: E402
from qa.settings import Settings  # noqa: E402

pytestmark = [pytest.mark.slow]

# The schema needs no index (read from the app object, no request, no lifespan); the
# session's service is attached before the first request.
_HOME = Path(tempfile.mkdtemp(prefix="qa-fuzz-"))  # nothing the fuzzer sends can touch the project's var/
APP = create_app(Settings().with_(admin_token="fuzz-token", index_dir=_HOME / "index", cache_dir=_HOME / "cache",
                                  documents_dir=_HOME / "uploads", watch_s=0))
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP


@pytest.fixture(autouse=True, scope="module")
def _serve(service):
    APP.state.service = service
    yield


@schema.parametrize()
@settings(max_examples=int(os.environ.get("QA_FUZZ_EXAMPLES", "30")), deadline=None, suppress_health_check=list(HealthCheck))
def test_api_honours_its_schema(case):
    case.call_and_validate()
