import pytest

pytestmark = pytest.mark.django_db


def test_schema_lists_every_annotation_endpoint(world):
    response = world.api("admin").get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    for path in (
        "/api/v1/projects",
        "/api/v1/projects/{project_id}",
        "/api/v1/projects/{project_id}/documents",
        "/api/v1/projects/{project_id}/documents/upload",
        "/api/v1/projects/{project_id}/documents/{document_id}/annotation",
        "/api/v1/projects/{project_id}/queue/next",
        "/api/v1/projects/{project_id}/queue/{document_id}/skip",
        "/api/v1/projects/{project_id}/progress",
        "/api/v1/projects/{project_id}/activity",
        "/api/v1/projects/{project_id}/members/{username}",
        "/api/v1/auth/token",
    ):
        assert path in paths, path
    listing = response.json()["paths"]["/api/v1/projects/{project_id}/documents"]["get"]
    filters = {p["name"] for p in listing["parameters"] if p["in"] == "query"}
    assert {"q", "status", "split", "ordering", "page"} <= filters
    export = response.json()["paths"]["/api/v1/projects/{project_id}/export/{fmt}"]["get"]
    params = {p["name"]: p for p in export["parameters"]}
    assert params["project_id"]["schema"]["type"] == "integer"
    assert params["fmt"]["schema"]["enum"] == ["cluener", "conll", "jsonl", "label_studio"]
    assert {"split", "annotated", "predictions"} <= set(params)


def test_swagger_ui_is_served(world):
    assert world.api("admin").get("/api/docs/").status_code == 200


def test_schema_request_bodies_are_what_a_client_sends(world):
    """A generated client uploads a file (binary, not a URI) and is not asked for the
    fields the server fills in; export answers in each format's content type."""
    schema = world.api("admin").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    assert components["UploadRequest"]["properties"]["file"]["format"] == "binary"
    assert components["ProjectRequest"]["required"] == ["name"]
    assert "id" not in components["ProjectRequest"]["properties"]
    export = schema["paths"]["/api/v1/projects/{project_id}/export/{fmt}"]["get"]
    assert set(export["responses"]["200"]["content"]) == {
        "application/json",
        "application/x-ndjson",
        "text/plain",
    }


def test_schema_lists_the_error_body_and_who_needs_no_login(world):
    """A generated client knows the error shape of every failure, and that getting a token
    needs no credentials."""
    schema = world.api("admin").get("/api/schema/", HTTP_ACCEPT="application/json").json()
    error = {"$ref": "#/components/schemas/Error"}
    token = schema["paths"]["/api/v1/auth/token"]["post"]
    assert token.get("security") in (None, [])
    assert token["responses"]["429"]["content"]["application/json"]["schema"] == error
    upload = schema["paths"]["/api/v1/projects/{project_id}/documents/upload"]["post"]
    for status in ("400", "401", "403", "404"):
        assert upload["responses"][status]["content"]["application/json"]["schema"] == error
    listing = schema["paths"]["/api/v1/projects"]["get"]
    assert "400" in listing["responses"]  # a refused ?page_size=
    assert "404" not in listing["responses"]
    detail = schema["paths"]["/api/v1/projects/{project_id}"]["get"]
    assert "400" not in detail["responses"]
    body = schema["components"]["schemas"]["ErrorBody"]["properties"]
    assert set(body) == {"code", "message", "detail"}
    assert "E102 stale revision" in body["code"]["description"]
    assert "not_authenticated" in body["code"]["description"]
    # the conflicts and refused query strings a client must handle are declared
    paths = schema["paths"]
    declared = {
        ("/api/v1/projects/{project_id}/documents/{document_id}/annotation", "post"): "409",
        ("/api/v1/projects/{project_id}/queue/{document_id}/skip", "post"): "409",
        ("/api/v1/projects/{project_id}/members/{username}", "delete"): "409",
        ("/api/v1/projects/{project_id}", "delete"): "409",
        ("/api/v1/projects/{project_id}/members", "post"): "409",
        ("/api/v1/projects/{project_id}/documents", "get"): "400",
        ("/api/v1/projects/{project_id}/documents", "delete"): "400",
        ("/api/v1/projects/{project_id}/versions/{version_id}/activate", "post"): "409",
        ("/api/v1/projects/{project_id}/queue/next", "get"): "400",
        ("/api/v1/projects/{project_id}/documents/upload", "post"): "413",
    }
    for (path, method), status in declared.items():
        assert status in paths[path][method]["responses"], (path, method)
    assert "415" in paths["/api/v1/projects/{project_id}/documents/upload"]["post"]["responses"]
    # E204: the endpoints that enqueue work answer 503 while the broker is down
    for path in (
        "/api/v1/projects/{project_id}/train",
        "/api/v1/projects/{project_id}/documents",
        "/api/v1/projects/{project_id}/documents/upload",
        "/api/v1/projects/{project_id}/versions/{version_id}/activate",
    ):
        assert "503" in paths[path]["post"]["responses"], path
    assert "409" not in paths["/api/v1/projects/{project_id}"]["patch"]["responses"]


def test_schema_generates_without_a_warning(tmp_path):
    """drf-spectacular's own checks: no colliding operation ids, no guessed types."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))
    assert (tmp_path / "s.yml").stat().st_size > 10_000
