"""The OpenAPI schema documents every field: a description and a realistic example for each.

Built from the app object alone: ``create_app`` without a service loads nothing until its
lifespan runs, and ``app.openapi()`` runs no lifespan, so no model or index is read here.
"""
from __future__ import annotations

import re

import pytest

from api.app import create_app
from qa.settings import Settings

# FastAPI's own components: its 422 shape, which the service never answers with (api/errors.py
# answers {"detail": "..."}), and the multipart bodies it generates from the upload routes'
# File() parameters (documented in api/routes/documents.py, not in api/schemas.py).
FASTAPI_OWN = {"HTTPValidationError", "ValidationError"}
GENERATED_PREFIX = "Body_"
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@pytest.fixture(scope="module")
def schema() -> dict:
    app = create_app(Settings())
    out = app.openapi()
    assert app.state.service is None  # nothing was loaded to build it
    return out


def _examples(prop: dict) -> list:
    """The property's examples: ``examples`` (JSON Schema), else ``example`` (OpenAPI 3.0)."""
    if prop.get("examples"):
        return list(prop["examples"])
    return [prop["example"]] if "example" in prop else []


def _documented_components(schema: dict) -> dict[str, dict]:
    return {name: component for name, component in schema["components"]["schemas"].items()
            if name not in FASTAPI_OWN and not name.startswith(GENERATED_PREFIX)}


def test_the_service_models_are_checked(schema):
    names = set(_documented_components(schema))
    assert {"AskRequest", "AskResponse", "AnswerOut", "PassageOut", "DocumentDetail", "Health", "Changed"} <= names


def test_every_field_has_a_description_and_an_example(schema):
    undescribed, without_example = [], []
    for name, component in sorted(_documented_components(schema).items()):
        for field, prop in component.get("properties", {}).items():
            # For a $ref or anyOf property pydantic puts description and examples beside it.
            if not str(prop.get("description", "")).strip():
                undescribed.append(f"{name}.{field}")
            if not _examples(prop):
                without_example.append(f"{name}.{field}")
    assert not undescribed, f"fields without a description: {', '.join(undescribed)}"
    assert not without_example, f"fields without an example: {', '.join(without_example)}"


def test_no_placeholder_examples(schema):
    placeholders = [f"{name}.{field}" for name, component in sorted(_documented_components(schema).items())
                    for field, prop in component.get("properties", {}).items()
                    if any(e in ("string", "3") for e in _examples(prop))]
    assert not placeholders, f"placeholder examples: {', '.join(placeholders)}"


def test_the_ask_example_question_is_chinese(schema):
    body = schema["paths"]["/ask"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    examples = _examples(component["properties"]["question"])
    assert examples, "the /ask question has no example"
    assert all(isinstance(e, str) and CJK.search(e) for e in examples), f"not Chinese: {examples}"
