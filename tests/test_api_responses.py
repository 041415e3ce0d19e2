"""Responses match the OpenAPI document the API publishes (/api/schema/).

Clients generate code from that document, so a field it calls required must be there and a
field it calls non-null must not be null. drf-spectacular writes OpenAPI 3.0 (``nullable``,
``$ref`` into components); ``as_json_schema`` turns a response schema into plain JSON Schema
for ``jsonschema`` to check real answers against.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from annotation.models import Annotation
from learner.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def openapi(world) -> dict:
    response = world.api("admin").get("/api/schema/", HTTP_ACCEPT="application/json")
    return response.json()


def as_json_schema(node, components: dict, depth: int = 0):
    if depth > 30:
        raise AssertionError("the schema nests deeper than expected (a cycle?)")
    if isinstance(node, list):
        return [as_json_schema(item, components, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return as_json_schema(components[name], components, depth + 1)
    out = {
        key: as_json_schema(value, components, depth + 1)
        for key, value in node.items()
        if key not in ("nullable", "readOnly", "writeOnly", "example", "format")
    }
    if node.get("nullable"):
        return {"anyOf": [out, {"type": "null"}]}
    return out


def check(openapi: dict, response, path: str, method: str = "get") -> None:
    """``response`` conforms to the schema of ``path``'s ``method`` for its status."""
    operation = openapi["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented, f"{method.upper()} {path}: status {response.status_code} not documented"
    content = documented.get("content", {}).get("application/json")
    if content is None:
        return
    schema = as_json_schema(content["schema"], openapi["components"]["schemas"])
    body = json.loads(response.content)
    try:
        jsonschema.validate(body, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise AssertionError(
            f"{method.upper()} {path} at {where or 'top'}: {exc.message}"
        ) from None


def test_responses_match_the_published_schema(world, openapi):
    api = world.api("admin")
    pid = world.project.pk
    project = "/api/v1/projects/{project_id}"
    bare = world.document("张三在北京。")
    done = world.document("李四在上海。", status="validated")
    Annotation.objects.create(
        document=done, annotator=world.admin, validated=True,
        spans=[{"start": 0, "end": 2, "label": "PER"}],
    )  # fmt: skip
    parent = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/x")
    ModelVersion.objects.create(
        project=world.project, version="v2", bundle_path="/y", parent=parent
    )
    TrainingRun.objects.create(project=world.project)  # queued: no model version yet

    check(openapi, api.get("/api/v1/projects"), "/api/v1/projects")
    check(openapi, api.get(f"/api/v1/projects/{pid}"), project)
    check(openapi, api.get(f"/api/v1/projects/{pid}/members"), f"{project}/members")
    check(openapi, api.get(f"/api/v1/projects/{pid}/documents"), f"{project}/documents")
    for doc in (bare, done):
        check(
            openapi,
            api.get(f"/api/v1/projects/{pid}/documents/{doc.pk}"),
            f"{project}/documents/{{document_id}}",
        )
        check(
            openapi,
            api.get(f"/api/v1/projects/{pid}/documents/{doc.pk}/annotation"),
            f"{project}/documents/{{document_id}}/annotation",
        )
    check(openapi, api.get(f"/api/v1/projects/{pid}/queue/next"), f"{project}/queue/next")
    check(openapi, api.get(f"/api/v1/projects/{pid}/runs"), f"{project}/runs")
    check(openapi, api.get(f"/api/v1/projects/{pid}/versions"), f"{project}/versions")
    check(openapi, api.get(f"/api/v1/projects/{pid}/metrics"), f"{project}/metrics")
    check(openapi, api.get(f"/api/v1/projects/{pid}/activity"), f"{project}/activity")
    check(openapi, api.get(f"/api/v1/projects/{pid}/progress"), f"{project}/progress")
    body = {"documents": [{"text": "王五"}]}
    check(
        openapi, api.post(f"/api/v1/projects/{pid}/documents", body, format="json"),
        f"{project}/documents", "post",
    )  # fmt: skip


def test_error_statuses_are_documented(world, openapi):
    outsider = world.api("outsider")
    response = outsider.post(
        "/api/v1/predict", {"text": "张三", "project": world.project.pk}, format="json"
    )
    assert response.status_code == 404
    check(openapi, response, "/api/v1/predict", "post")


def test_bodies_are_json_only(openapi):
    """Every endpoint takes JSON (uploads: multipart); no form bodies that cannot work."""
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            kinds = set(operation.get("requestBody", {}).get("content", {}))
            if path.endswith("/upload"):
                assert kinds == {"multipart/form-data"}, path
            elif path != "/api/v1/auth/token":
                assert kinds <= {"application/json"}, (method, path, kinds)
