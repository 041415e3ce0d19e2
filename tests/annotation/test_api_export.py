"""GET /projects/{id}/export/{format}: streamed, a fixed number of queries, every format."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotation.formats import FORMATS, iter_examples
from annotation.models import Annotation, Document, Prediction
from learner.models import ModelVersion
from tests.base import ROLES, expected

pytestmark = pytest.mark.django_db


def url(world, fmt: str, query: str = "") -> str:
    return f"/api/v1/projects/{world.project.pk}/export/{fmt}{query}"


def body(response) -> str:
    assert response.streaming
    return b"".join(response.streaming_content).decode("utf-8")


def fill(world, n: int) -> None:
    docs = Document.objects.bulk_create(
        [Document(project=world.project, text=f"张三在北京第{i}次开会。") for i in range(n)]
    )
    Annotation.objects.bulk_create(
        [
            Annotation(document=doc, spans=[{"start": 0, "end": 2, "label": "PER"}], validated=True)
            for doc in docs[::2]
        ]
    )


@pytest.mark.parametrize("role", ROLES)
def test_export_permissions(world, role):
    fill(world, 2)
    response = world.api(role).get(url(world, "jsonl"))
    assert response.status_code == expected(("admin",), role, 200)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_export_round_trips_every_format(world, fmt):
    world.document("张三在北京。")
    annotated = world.document("李四去了上海，见到王五。")
    Annotation.objects.create(
        document=annotated,
        validated=True,
        spans=[
            {"start": 0, "end": 2, "label": "PER"},
            {"start": 4, "end": 6, "label": "LOC"},
            {"start": 9, "end": 11, "label": "PER"},
        ],
    )
    response = world.api("admin").get(url(world, fmt))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    examples = list(iter_examples(fmt, body(response).splitlines(), "export"))
    if fmt == "conll":  # validated documents only: an unanswered one would read as "no entity"
        examples.insert(0, None)
    else:
        assert examples[0].text == "张三在北京。" and examples[0].spans == []
    assert examples[1].text == "李四去了上海，见到王五。"
    assert [tuple(s) for s in examples[1].spans] == [(0, 2, "PER"), (4, 6, "LOC"), (9, 11, "PER")]
    assert len(examples) == 2


def test_export_conll_is_one_character_per_line(world):
    doc = world.document("王小明在北京")
    Annotation.objects.create(
        document=doc, validated=True, spans=[{"start": 0, "end": 3, "label": "PER"}]
    )
    lines = body(world.api("admin").get(url(world, "conll"))).splitlines()
    assert lines[:7] == ["王 B-PER", "小 I-PER", "明 I-PER", "在 O", "北 O", "京 O", ""]
    for scheme, tags in [
        ("bioes", ["B-PER", "I-PER", "E-PER"]),
        ("BMES", ["B-PER", "M-PER", "E-PER"]),
    ]:
        lines = body(world.api("admin").get(url(world, "conll", f"?scheme={scheme}"))).splitlines()
        assert [line.split()[1] for line in lines[:3]] == tags
    refused = world.api("admin").get(url(world, "conll", "?scheme=iob9"))
    assert refused.status_code == 400 and "scheme" in refused.json()["error"]["detail"]


@pytest.mark.parametrize("query", ["", "?predictions=1"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_export_uses_a_fixed_number_of_queries(world, fmt, query):
    api = world.api("admin")
    counts = []
    for n in (10, 200):
        Document.objects.all().delete()
        fill(world, n)
        with CaptureQueriesContext(connection) as queries:
            text = body(api.get(url(world, fmt, query)))
        # once per document in every format (CoNLL: the validated half only)
        assert text.count("会") == (n // 2 if fmt == "conll" else n)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 4


def test_export_filters_split_and_annotated(world):
    fill(world, 4)
    world.document("评测句", split="eval")
    only_eval = body(world.api("admin").get(url(world, "jsonl", "?split=eval")))
    assert [json.loads(line)["text"] for line in only_eval.splitlines()] == ["评测句"]
    annotated = body(world.api("admin").get(url(world, "jsonl", "?annotated=1")))
    assert len(annotated.splitlines()) == 2


def test_export_fills_unannotated_documents_with_the_latest_prediction(world):
    old = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/x")
    new = ModelVersion.objects.create(project=world.project, version="v2", bundle_path="/y")
    human = world.document("张三在北京。", status="validated")
    Annotation.objects.create(
        document=human, validated=True, spans=[{"start": 0, "end": 2, "label": "PER"}]
    )
    guessed = world.document("李四去了上海。", status="predicted", predicted_by=new)
    for version, label in ((old, "ORG"), (new, "LOC")):
        Prediction.objects.create(
            document=guessed, model_version=version, mean_entropy=0.1, max_entropy=0.2,
            least_confidence=0.1, mnlp=-0.1,
            spans=[{"start": 4, "end": 6, "label": label, "score": 0.9},
                   {"start": 0, "end": 2, "label": "GONE", "score": 0.8}],
        )  # fmt: skip
    world.document("没有预测。")
    api = world.api("admin")
    records = [
        json.loads(line)
        for line in body(api.get(url(world, "jsonl", "?predictions=1"))).splitlines()
    ]
    assert [r["nerloop_source"] for r in records] == ["human", "model v2", "none"]
    assert records[0]["entities"] == [{"start": 0, "end": 2, "label": "PER"}]
    # the latest version's answer, without a label the project no longer has
    assert records[1]["entities"] == [{"start": 4, "end": 6, "label": "LOC"}]
    assert records[2]["entities"] == []
    plain = [json.loads(line) for line in body(api.get(url(world, "jsonl"))).splitlines()]
    assert plain[1]["entities"] == [] and plain[1]["nerloop_source"] == "none"
    assert [r["nerloop_split"] for r in plain] == ["train"] * 3
    # CoNLL: the validated document, plus the pre-annotated one when asked; never the others
    conll = [
        e.text for e in iter_examples("conll", body(api.get(url(world, "conll"))).splitlines(), "x")
    ]
    assert conll == ["张三在北京。"]
    asked = body(api.get(url(world, "conll", "?predictions=1"))).splitlines()
    assert [e.text for e in iter_examples("conll", asked, "x")] == [
        "张三在北京。",
        "李四去了上海。",
    ]


def test_export_unknown_format_is_not_found(world):
    assert world.api("admin").get(url(world, "xml")).status_code == 404


def test_export_keeps_document_meta(world):
    world.document("张三", meta={"source": "新闻", "id": 7})
    record = json.loads(body(world.api("admin").get(url(world, "jsonl"))))
    assert record["source"] == "新闻" and record["id"] == 7


@pytest.mark.parametrize(
    ("query", "field"),
    [("?split=test", "split"), ("?annotated=2", "annotated"), ("?predictions=x", "predictions")],
)
def test_export_rejects_a_bad_query(world, query, field):
    response = world.api("admin").get(url(world, "jsonl", query))
    assert response.status_code == 400
    assert field in response.json()["error"]["detail"]


def test_export_label_studio_keeps_each_kind_of_answer_where_label_studio_does(world):
    version = ModelVersion.objects.create(project=world.project, version="v9", bundle_path="/x")
    human = world.document("张三在北京。", status="validated")
    Annotation.objects.create(document=human, validated=True, spans=[])  # "no entity"
    draft = world.document("李四在上海。", status="annotated")
    Annotation.objects.create(document=draft, spans=[{"start": 0, "end": 2, "label": "PER"}])
    guessed = world.document("王五在杭州。", status="predicted", predicted_by=version)
    Prediction.objects.create(
        document=guessed, model_version=version, mean_entropy=0.1, max_entropy=0.2,
        least_confidence=0.1, mnlp=-0.1, spans=[{"start": 0, "end": 2, "label": "PER", "score": 0.9}],
    )  # fmt: skip
    world.document("没有人看过。")
    tasks = json.loads(body(world.api("admin").get(url(world, "label_studio", "?predictions=1"))))
    assert tasks[0]["annotations"] == [{"result": []}]  # a human's answer: completed
    assert (
        "annotations" not in tasks[1]
        and tasks[1]["drafts"][0]["result"][0]["value"]["text"] == "李四"
    )
    assert "annotations" not in tasks[2] and tasks[2]["predictions"][0]["model_version"] == "v9"
    assert set(tasks[3]) == {"data"}  # nobody answered: not completed in Label Studio


@pytest.mark.parametrize(
    ("fmt", "accept", "content_type"),
    [
        ("jsonl", "application/octet-stream", "application/x-ndjson"),
        ("conll", "text/plain", "text/plain"),
        ("cluener", "application/x-ndjson", "application/x-ndjson"),
        ("label_studio", "application/json", "application/json"),
    ],
)
def test_export_streams_whatever_the_client_accepts(world, fmt, accept, content_type):
    fill(world, 2)
    response = world.api("admin").get(url(world, fmt), HTTP_ACCEPT=accept)
    assert response.status_code == 200 and response["Content-Type"].startswith(content_type)
    assert "张" in body(response)


def test_export_errors_stay_json_whatever_the_client_accepts(world):
    response = world.api("admin").get(url(world, "jsonl", "?split=test"), HTTP_ACCEPT="text/plain")
    assert response.status_code == 400 and "split" in response.json()["error"]["detail"]
