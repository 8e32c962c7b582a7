"""The REST API against its own OpenAPI document: schemathesis generates requests for every
operation under /api that the running service's /openapi.json lists (whoever wrote it),
sends them over real HTTP with an administrator's bearer token, and checks that nothing
answers with a server error and every answer (status, content type, body) is one the
document describes. Valid requests first, then requests that break the schema.

A bounded number of examples per operation keeps it to seconds. Between examples the
administrator is put back (enabled, an administrator, a live token), since a generated
request may well disable them or revoke the very token the test uses; and every connection
a generated request stores points at a closed port on this machine, so no Test and no run
ever reaches out beyond it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from markupsafe import escape
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from smslink.app import Smslink
from smslink.domain.models import Role
from smslink.web.routes import API
from tests.web.site import ADMIN, free_port, running_site
from tests.web.test_users import app_of

#: Examples per operation and mode: enough to find the shapes that break, few enough that
#: the whole API takes seconds (each example is one HTTP request; some hash a password).
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 30, schemathesis.GenerationMode.NEGATIVE: 15}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Administrator:
    """The test's caller, put back before every request."""

    def __init__(self, app: Smslink) -> None:
        self._app = app
        [ada] = [u for u in app.users.list() if u.name == ADMIN[0]]
        self._id = ada.id
        self._token = ""

    def headers(self) -> dict[str, str]:
        ada = self._app.users.get(self._id)
        if ada.disabled or ada.role is not Role.ADMIN:
            self._app.users.update(self._id, role=Role.ADMIN, disabled=False)
        if not self._token or self._app.users.token_user(self._token) is None:
            _, self._token = self._app.users.create_token(self._id, "schema check")
        return {"Authorization": f"Bearer {self._token}"}


def _kept_local(case: Any, base_url: str) -> None:
    """A connection or webhook subscription the case would store points at `base_url` (a
    closed local port)."""
    if case.path.startswith("/api/connections") and isinstance(case.body, dict):
        case.body["base_url"] = base_url
    if case.path.startswith("/api/webhooks") and isinstance(case.body, dict):
        case.body["url"] = base_url


def _described(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "\n".join([str(error), *(_described(e) for e in error.exceptions)])
    return f"{type(error).__name__}: {error}"


#: Each area of the API by its router's tag, so a failure says whose endpoints it is.
AREAS = [str(module.router.tags[0]) for module in API]


def _operations(site_url: str) -> list[Any]:
    """Every operation under /api the running service documents."""
    schema = schemathesis.openapi.from_url(site_url + "/openapi.json")
    found = []
    for result in schema.get_all_operations():
        operation = result.ok()  # an operation the document describes badly fails here
        if operation.path.startswith("/api"):
            found.append(operation)
    return found


def test_every_api_operation_belongs_to_an_area(home: Path) -> None:
    with running_site(home, users=False) as site:
        operations = _operations(site.url)
    assert len(operations) >= 14
    assert [
        o.label for o in operations if not set(o.definition.raw.get("tags", [])) & set(AREAS)
    ] == []


@pytest.mark.parametrize("area", AREAS)
def test_every_api_operation_answers_as_its_schema_says(home: Path, area: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}/2010-04-01"
    failures: list[str] = []
    with running_site(home) as site, app_of(site) as app:
        caller = Administrator(app)
        operations = [o for o in _operations(site.url) if area in o.definition.raw.get("tags", [])]
        for operation in operations:
            for mode, examples in EXAMPLES.items():

                @settings(
                    max_examples=examples,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def check(case: Any) -> None:
                    _kept_local(case, closed)
                    case.call_and_validate(
                        base_url=site.url, headers=caller.headers(), checks=CHECKS, timeout=30
                    )

                try:
                    check()
                except Unsatisfiable:  # nothing of it can be broken (no parameters, no body)
                    assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
                # Every operation is tried and all failures reported (schemathesis raises
                # its findings as a BaseExceptionGroup).
                except (Exception, BaseExceptionGroup) as error:
                    failures.append(f"{operation.label} ({mode.value}):\n{_described(error)}")

    assert not failures, "\n\n".join(failures)


def test_the_docs_page_lists_every_operation_of_the_document(home: Path) -> None:
    """/docs shows what /openapi.json says, with no script at all (let alone another
    site's), to anyone who may read /openapi.json itself."""
    with running_site(home, users=False) as site:
        spec = requests.get(site.url + "/openapi.json", timeout=10).json()
        page = requests.get(site.url + "/docs", timeout=10)

    assert page.status_code == 200
    html = page.text
    assert 'href="/openapi.json"' in html and "<script" not in html
    for path, item in spec["paths"].items():
        if not path.startswith("/api"):
            continue
        for method, operation in item.items():
            anchor = "-".join([method, *(p.strip("{}") for p in path.split("/") if p)])
            assert f'id="{anchor}"' in html, (method, path)
            if operation.get("summary"):
                assert str(escape(operation["summary"])) in html
    for name in ("ConnectionIn", "TokenCreated", "OptOutList", "Error"):
        assert f'id="schema-{name}"' in html
    assert "write-only" in html  # the secrets are marked as such
