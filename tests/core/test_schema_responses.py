"""Real responses of every API route, successes and refusals, validated against the served OpenAPI schema."""
from __future__ import annotations

import re

import pytest
from jsonschema import Draft7Validator
from rest_framework.test import APIClient

from tests.isolation import factories_by_model

pytestmark = pytest.mark.django_db
PARAM = re.compile(r"\{(\w+)\}")


def _nullable_to_json_schema(node):
    """OpenAPI 3.0's `nullable: true` in JSON Schema terms, so jsonschema can validate."""
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _nullable_to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


@pytest.fixture
def schema(client):
    document = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    return _nullable_to_json_schema(document)


def _validate(schema: dict, template: str, method: str, response) -> None:
    operation = schema["paths"][template][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {template}: {response.status_code} is not documented"
    if not response.get("Content-Type", "").startswith("application/json"):
        return
    content = documented.get("content", {})
    media = content.get("application/json") or next(iter(content.values()), None)
    assert media is not None, f"{method.upper()} {template}: {response.status_code} documents no JSON body"
    validator = Draft7Validator({**media["schema"], "components": schema["components"]})
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, f"{method.upper()} {template} {response.status_code}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5])


def _fill(template: str, samples: dict[str, dict]) -> str | None:
    """A concrete path: parameters taken from the first item of the list route the template hangs under."""
    def value(match):
        prefix = template[: match.start()]
        item = samples.get(prefix)
        return str(item.get(match.group(1), "0")) if item else "0"

    return PARAM.sub(value, template)


def _seed(tenant) -> None:
    for model, factory in factories_by_model().items():
        fields = {f.name for f in model._meta.get_fields()}
        if "tenant" in fields:
            factory(tenant=tenant)


def test_every_route_answers_as_its_schema_says(schema, tenant_a, token_client):
    _seed(tenant_a)
    admin = token_client(tenant_a, "admin")
    anonymous = APIClient()
    samples: dict[str, dict] = {}
    checked = 0
    for template in sorted(schema["paths"], key=lambda t: (t.count("{"), t)):
        operations = schema["paths"][template]
        path = _fill(template, samples)
        if "get" in operations:
            response = admin.get(path)
            _validate(schema, template, "get", response)
            body = response.json() if response.get("Content-Type", "").startswith("application/json") else None
            items = body.get("results") if isinstance(body, dict) else body
            if isinstance(items, list) and items and isinstance(items[0], dict):
                samples[template] = items[0]
            _validate(schema, template, "get", anonymous.get(path))
            checked += 2
        if "post" in operations:
            for body in ({}, {"name": ["not", "a", "string"]}):
                _validate(schema, template, "post", admin.post(path, body, format="json"))
                checked += 1
            _validate(schema, template, "post", admin.post(path, "[" * 40 + "]" * 40, content_type="application/json"))
            _validate(schema, template, "post", anonymous.post(path, {}, format="json"))
            checked += 2
        if "patch" in operations:
            _validate(schema, template, "patch", admin.patch(path, {"name": 7 * [1]}, format="json"))
            checked += 1
    assert checked > 100
