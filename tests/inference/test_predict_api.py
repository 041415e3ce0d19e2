"""POST /api/v1/predict: authentication, answers, every bad input, and no model ready."""

import json

import pytest
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from inference import registry

URL = "/api/v1/predict"


@pytest.fixture
def user(db, django_user_model):
    return django_user_model.objects.create_user(username="caller")  # no password: no hashing


@pytest.fixture
def api(user):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")  # DRF's own messages, untranslated
    client.force_authenticate(user)
    return client


@pytest.fixture
def served(tiny_bundle):
    with override_settings(DEFAULT_BUNDLE=str(tiny_bundle)):
        yield tiny_bundle
    registry.unload(tiny_bundle)


def _error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()["error"]
    assert body["code"] == code
    return body


def test_predict_api_requires_authentication(db, served):
    response = APIClient().post(URL, {"text": "张三"}, format="json")
    assert response.status_code in (401, 403)
    assert response.json()["error"]["code"] == "not_authenticated"


def test_predict_api_accepts_token_authentication(user, served):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.post(URL, {"text": "张三"}, format="json").status_code == 200


def test_predict_api_accepts_session_authentication(user, served):
    client = APIClient()
    client.force_login(user)  # a real session cookie, checked by SessionAuthentication
    assert client.post(URL, {"text": "张三"}, format="json").status_code == 200


def test_predict_api_one_text(api, served):
    response = api.post(URL, {"text": "😀张三在北京。"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"entities", "uncertainty", "model_version", "took_ms"}
    assert [(e["text"], e["label"], e["start"], e["end"]) for e in body["entities"]] == [
        ("张三", "PER", 1, 3),
        ("北京", "LOC", 4, 6),
    ]
    assert all(0 < e["score"] <= 1 for e in body["entities"])
    assert set(body["uncertainty"]) == {"mean_entropy", "max_entropy", "least_confidence", "mnlp"}
    assert body["model_version"] == "tiny-1"
    assert isinstance(body["took_ms"], float)


def test_predict_api_texts_in_order(api, served):
    texts = ["北京", "", "   ", "李和张小三", "我们" * 60 + "张三"]
    response = api.post(URL, {"texts": texts}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"results", "model_version", "took_ms"}
    found = [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in body["results"]]
    assert found == [[(0, 2, "LOC")], [], [], [(0, 1, "PER"), (2, 5, "PER")], [(120, 122, "PER")]]


@pytest.mark.parametrize(
    ("payload", "field", "says"),
    [
        ({}, "non_field_errors", "neither"),
        ({"project": 1}, "non_field_errors", "neither"),
        ({"text": "a", "texts": ["b"]}, "non_field_errors", "both"),
        ({"text": 123}, "text", "valid string"),
        ({"text": None}, "text", "null"),
        ({"text": ["a"]}, "text", "valid string"),
        ({"texts": "abc"}, "texts", "list"),
        ({"texts": [1, "a"]}, "texts", "valid string"),
        ({"texts": []}, "texts", "empty"),
        ({"texts": {"a": 1}}, "texts", "list"),
        ({"text": "x" * 11}, "text", "limit is 10"),
        ({"texts": ["ok", "x" * 11]}, "texts", "texts[1] has 11 characters"),
        ({"texts": ["a"] * 4}, "texts", "4 texts sent; the limit is 3"),
        ({"texts": ["x" * 10, "x" * 10, "x"]}, "texts", "21 characters in all; the limit is 20"),
        ({"text": "张\ud800三"}, "text", "unpaired surrogate"),
        ({"texts": ["ok", "\udfff"]}, "texts", "unpaired surrogate"),
        ({"text": "张三", "model": 3}, "model", "unknown field"),
    ],
)
def test_predict_api_rejects_bad_input(api, served, payload, field, says):
    body = json.dumps(payload)  # ASCII escapes: a lone surrogate travels as JSON allows
    with override_settings(PREDICT_MAX_CHARS=10, PREDICT_MAX_TEXTS=3, PREDICT_MAX_TOTAL_CHARS=20):
        response = api.post(URL, body, content_type="application/json")
    body = _error(response, 400, "E203")
    assert field in body["detail"]
    assert says in json.dumps(body["detail"], ensure_ascii=False)


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("text=张三", "application/x-www-form-urlencoded", 415),
        ("张三", "text/plain", 415),
    ],
)
def test_predict_api_rejects_a_body_that_is_not_json(api, served, content, content_type, status):
    response = api.post(URL, content.encode(), content_type=content_type)
    body = _error(response, status, "E203")
    assert "JSON" in body["detail"]


def test_predict_api_rejects_json_that_is_not_an_object(api, served):
    body = _error(api.post(URL, ["张三"], format="json"), 400, "E203")
    assert "non_field_errors" in body["detail"]


def test_predict_api_text_at_the_limit_is_accepted(api, served):
    with override_settings(PREDICT_MAX_CHARS=10):
        assert api.post(URL, {"text": "张三" * 5}, format="json").status_code == 200


def test_predict_api_without_a_bundle_is_503(api, tmp_path):
    with override_settings(DEFAULT_BUNDLE=str(tmp_path / "absent")):
        response = api.post(URL, {"text": "张三"}, format="json")
    body = _error(response, 503, "E201")
    assert "absent" in body["detail"]


def test_predict_api_with_a_tampered_bundle_is_503(api, tiny_bundle):
    (tiny_bundle / "labels.json").write_text('["O"]')
    with override_settings(DEFAULT_BUNDLE=str(tiny_bundle)):
        response = api.post(URL, {"text": "张三"}, format="json")
    body = _error(response, 503, "E201")
    assert "labels.json" in body["detail"]


def test_predict_api_is_in_the_openapi_schema(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    operation = json.loads(response.content)["paths"]["/api/v1/predict"]["post"]
    assert operation["operationId"] == "predict"
    assert {"200", "400", "503"} <= set(operation["responses"])


def test_predict_api_says_its_limits_in_the_requests_language(user, served):
    client = APIClient(HTTP_ACCEPT_LANGUAGE="zh-hans")  # the playground's default
    client.force_authenticate(user)
    with override_settings(PREDICT_MAX_CHARS=10):
        response = client.post(URL, {"text": "张三" * 6}, format="json")
    assert "text 有 12 个字符，上限是 10" in json.dumps(
        _error(response, 400, "E203")["detail"], ensure_ascii=False
    )
