import json

import pytest

from annotation.models import Annotation, Document
from learner.models import ModelVersion
from tests.base import ROLES, expected

pytestmark = pytest.mark.django_db


def url(world, suffix: str = "") -> str:
    return f"/api/v1/projects/{world.project.pk}/documents{suffix}"


@pytest.mark.parametrize("role", ROLES)
def test_documents_list_permissions(world, role):
    world.document()
    world.document("别的项目", project=world.other_project)
    response = world.api(role).get(url(world))
    assert response.status_code == expected(("admin", "annotator"), role, 200)
    if response.status_code == 200:
        assert [row["text"] for row in response.json()["results"]] == ["张三在北京工作。"]


def test_documents_list_filters(world):
    version = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/x")
    a = world.document("一", uncertainty=0.1, predicted_by=version, status="predicted")
    b = world.document("二", uncertainty=0.9, predicted_by=version, status="predicted")
    c = world.document("三", split="eval")
    d = world.document("四", status="validated")
    api = world.api("annotator")

    def ids(query: str) -> list[int]:
        response = api.get(url(world, query))
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids("") == [a.pk, b.pk, c.pk, d.pk]
    assert ids("?status=predicted") == [a.pk, b.pk]
    assert ids("?split=eval") == [c.pk]
    assert ids("?has_prediction=true") == [a.pk, b.pk]
    assert ids("?has_prediction=false") == [c.pk, d.pk]
    assert ids("?uncertainty_min=0.5") == [b.pk]
    assert ids("?uncertainty_max=0.5") == [a.pk]
    assert ids("?has_prediction=true&ordering=-uncertainty") == [b.pk, a.pk]
    # Documents without a prediction come last in either direction, ties in id order.
    assert ids("?ordering=-uncertainty") == [b.pk, a.pk, c.pk, d.pk]
    assert ids("?ordering=uncertainty") == [a.pk, b.pk, c.pk, d.pk]
    assert ids("?ordering=-id") == [d.pk, c.pk, b.pk, a.pk]
    Annotation.objects.create(document=a, validated=True)
    Annotation.objects.create(document=d, validated=True)
    assert ids("?ordering=-annotated") == [d.pk, a.pk, b.pk, c.pk]
    assert ids("?status=validated&split=train") == [d.pk]


def test_documents_list_searches_text_and_shows_annotations(world, django_assert_max_num_queries):
    a = world.document("张三在北京工作。")
    b = world.document("李四去了北京。", status="validated")
    world.document("王五在上海。")
    Annotation.objects.create(
        document=b,
        annotator=world.user("annotator"),
        validated=True,
        spans=[{"start": 0, "end": 2, "label": "PER"}],
    )
    api = world.api("annotator")
    with django_assert_max_num_queries(8):
        rows = api.get(url(world, "?q=北京")).json()["results"]
    assert [row["id"] for row in rows] == [a.pk, b.pk]
    assert rows[0]["annotation"] is None
    assert rows[1]["annotation"]["spans"] == [{"start": 0, "end": 2, "label": "PER"}]
    assert rows[1]["annotation"]["annotator"] == "annotator"
    assert rows[1]["annotation"]["validated"] is True
    assert api.get(url(world, "?q=广州")).json()["count"] == 0
    # letters match in either case, on PostgreSQL as on SQLite
    c = world.document("他买了一部iPhone。")
    assert [row["id"] for row in api.get(url(world, "?q=IPHONE")).json()["results"]] == [c.pk]


def test_documents_list_rejects_a_bad_filter(world):
    response = world.api("annotator").get(url(world, "?status=lost"))
    assert response.status_code == 400
    assert "status" in response.json()["error"]["detail"]


def test_documents_list_paginates(world):
    Document.objects.bulk_create(
        [Document(project=world.project, text=f"第{i}句") for i in range(130)]
    )
    first = world.api("annotator").get(url(world)).json()
    assert first["count"] == 130
    assert len(first["results"]) == 100
    second = world.api("annotator").get(first["next"]).json()
    assert len(second["results"]) == 30
    # a client picks its page size (at most 1,000), and the next link keeps it
    small = world.api("annotator").get(url(world), {"page_size": 50}).json()
    assert len(small["results"]) == 50 and "page_size=50" in small["next"]
    assert len(world.api("annotator").get(small["next"]).json()["results"]) == 50
    big = world.api("annotator").get(url(world), {"page_size": 5000}).json()
    assert len(big["results"]) == 130 and big["next"] is None
    for wrong in ("0", "-1", "abc", "1.5", "２"):
        refused = world.api("annotator").get(url(world), {"page_size": wrong})
        assert refused.status_code == 400, wrong
        assert "page_size" in refused.json()["error"]["detail"]


@pytest.mark.parametrize("role", ROLES)
def test_documents_bulk_create_permissions(world, role):
    body = {"documents": [{"text": "李四去了上海。"}]}
    response = world.api(role).post(url(world), body, format="json")
    assert response.status_code == expected(("admin",), role, 201)
    assert Document.objects.filter(text="李四去了上海。").exists() == (role == "admin")


def test_documents_bulk_create_stores_gold_spans_as_validated_annotations(world):
    body = [
        {"text": "李四去了上海。", "spans": [{"start": 0, "end": 2, "label": "PER"}]},
        {"text": "今天没有实体。", "spans": []},
        {"text": "待标注的句子", "meta": {"source": "api"}, "split": "eval"},
    ]
    response = world.api("admin").post(url(world), body, format="json")
    assert response.status_code == 201, response.json()
    data = response.json()
    assert (data["documents"], data["annotated"]) == (3, 2)
    first, second, third = (Document.objects.get(pk=pk) for pk in data["ids"])
    assert first.status == second.status == "validated"
    assert first.annotation.spans == [{"start": 0, "end": 2, "label": "PER"}]
    assert first.annotation.validated and first.annotation.annotator is None  # nobody's work
    assert second.annotation.spans == []
    assert third.status == "new" and third.split == "eval" and third.meta == {"source": "api"}
    assert not Annotation.objects.filter(document=third).exists()


def test_documents_bulk_create_queues_prediction_after_commit(
    world, django_capture_on_commit_callbacks
):
    body = [{"text": f"第{i}句"} for i in range(300)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = world.api("admin").post(url(world), body, format="json")
    assert response.status_code == 201
    assert len(callbacks) == 2  # 256 + 44 documents


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"text": "张三", "spans": [{"start": 0, "end": 5, "label": "PER"}]}, "outside the text"),
        ({"text": "张三", "spans": [{"start": 0, "end": 2, "label": "GPE"}]}, "not in the schema"),
        (
            {"text": "张三丰", "spans": [[0, 2, "PER"], [1, 3, "PER"]]},
            "overlap",
        ),
        ({"text": "张三", "spans": [{"start": 1, "end": 1, "label": "PER"}]}, "empty"),
        ({"text": ""}, "text is empty"),
        ({"words": "张三"}, "unknown key 'words'"),
        ({"text": 5}, "'text' must be a string"),
        (
            {"text": "张三", "entities": [{"start": 0, "end": 2, "label": "PER"}]},
            "unknown key 'entities' (spans go in 'spans')",
        ),
        ("张三", "expected an object"),
        ({"text": "张三", "split": []}, "split [] is not one of train, eval"),
        ({"text": "张三", "split": {"a": 1}}, "is not one of train, eval"),
        ({"text": "张三" * 6}, "text has 12 characters; the limit is 10"),
    ],
)
def test_documents_bulk_create_rejects_the_whole_batch(world, document, problem, settings):
    settings.IMPORT_MAX_CHARS = 10
    body = [{"text": "好的第一句"}, document]
    response = world.api("admin").post(url(world), body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "E103"
    assert error["detail"]["problems"][0]["document"] == 2
    assert problem in error["detail"]["problems"][0]["problem"]
    assert problem in error["detail"]["message"]
    assert not Document.objects.exists()


def test_documents_bulk_create_can_extend_the_schema(world):
    body = {
        "documents": [{"text": "在周一开会", "spans": [[1, 3, "TIME"]]}],
        "extend_labels": True,
    }
    response = world.api("admin").post(url(world), body, format="json")
    assert response.status_code == 201
    assert response.json()["labels_added"] == ["TIME"]
    world.project.refresh_from_db()
    assert world.project.label_names() == ["PER", "LOC", "ORG", "TIME"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([{"text": "张三在北京", "meta": {"k": "\ud800"}}], "[0].meta.k: contains an unpaired"),
        ([{"text": "张三\u0000在北京"}], "[0].text: contains a NUL character"),
        ([{"text": "张三", "meta": {"\udfff": 1}}], "a key of [0].meta: contains an unpaired"),
        (
            {"documents": [{"text": "王五", "spans": [[0, 2, "PER\ud800"]]}], "extend_labels": 1},
            "documents[0].spans[0][2]: contains an unpaired",
        ),
    ],
)
def test_documents_bulk_create_refuses_strings_that_cannot_be_stored(world, body, says):
    """JSON escapes allow a lone surrogate and NUL; neither can be stored (PostgreSQL refuses
    both), so the body is refused before anything is written."""
    raw = json.dumps(body)  # ASCII escapes: "\\ud800" and "\\u0000" travel as JSON allows
    response = world.api("admin").post(url(world), data=raw, content_type="application/json")
    assert response.status_code == 400
    assert says in response.json()["error"]["detail"]
    assert not Document.objects.exists()
    assert world.api("admin").get(url(world)).status_code == 200
    world.project.refresh_from_db()
    assert world.project.label_names() == ["PER", "LOC", "ORG"]


def test_documents_bulk_create_refuses_a_new_label_that_is_no_valid_name(world):
    body = {"documents": [{"text": "abcdef", "spans": [[0, 2, "X "]]}], "extend_labels": True}
    response = world.api("admin").post(url(world), body, format="json")
    assert response.status_code == 400
    assert "label 'X ' is not a valid label name" in response.json()["error"]["detail"]["message"]
    assert not Document.objects.exists()
    world.project.refresh_from_db()
    assert world.project.label_names() == ["PER", "LOC", "ORG"]


def test_documents_bulk_create_refuses_unknown_options_and_reserved_meta(world):
    admin = world.api("admin")
    typo = admin.post(
        url(world),
        {"documents": [{"text": "张三"}], "skip_duplicate": True},
        format="json",
    )
    assert typo.status_code == 400
    assert "skip_duplicate" in typo.json()["error"]["detail"]
    assert "skip_duplicates" in str(typo.json()["error"]["detail"])  # what it does take
    for key in ("text", "entities", "label", "nerloop_split", "nerloop_source"):
        refused = admin.post(
            url(world), [{"text": "张三", "meta": {key: "x", "source": "web"}}], format="json"
        )
        assert refused.status_code == 400, key
        assert f"meta key {key!r}" in refused.json()["error"]["detail"]["message"]
    assert not Document.objects.exists()
    kept = admin.post(url(world), [{"text": "张三", "meta": {"source": "web"}}], format="json")
    assert kept.status_code == 201


def test_documents_bulk_create_rejects_malformed_json(world):
    response = world.api("admin").post(
        url(world), data="[{'text': 1", content_type="application/json"
    )
    assert response.status_code == 400
    assert not Document.objects.exists()


@pytest.mark.parametrize("role", ROLES)
def test_documents_detail_permissions(world, role):
    doc = world.document()
    response = world.api(role).get(url(world, f"/{doc.pk}"))
    assert response.status_code == expected(("admin", "annotator"), role, 200)


@pytest.mark.parametrize("role", ROLES)
def test_documents_patch_permissions(world, role):
    doc = world.document()
    response = world.api(role).patch(url(world, f"/{doc.pk}"), {"split": "eval"}, format="json")
    assert response.status_code == expected(("admin",), role, 200)
    doc.refresh_from_db()
    assert doc.split == ("eval" if role == "admin" else "train")


def test_documents_patch_moves_the_split_and_replaces_the_meta(world):
    doc = world.document(meta={"source": "a"})
    admin = world.api("admin")
    response = admin.patch(url(world, f"/{doc.pk}"), {"split": "eval"}, format="json")
    assert response.status_code == 200
    assert (response.json()["split"], response.json()["meta"]) == ("eval", {"source": "a"})
    response = admin.patch(url(world, f"/{doc.pk}"), {"meta": {"batch": 7}}, format="json")
    assert response.json()["meta"] == {"batch": 7} and response.json()["split"] == "eval"
    # bad input is refused and changes nothing
    for body, field in (
        ({"split": "test"}, "split"),
        ({"meta": [1, 2]}, "meta"),
        ({"text": "别的句子", "split": "train"}, "text"),
        ({"status": "validated"}, "status"),
        ({"splt": "train"}, "splt"),  # a typo is not ignored
        ({"meta": {"text": "另一句"}}, "meta"),  # an export would write the text over it
    ):
        refused = admin.patch(url(world, f"/{doc.pk}"), body, format="json")
        assert refused.status_code == 400, body
        assert field in refused.json()["error"]["detail"], refused.json()
    doc.refresh_from_db()
    assert (doc.split, doc.meta, doc.text) == ("eval", {"batch": 7}, "张三在北京工作。")
    assert admin.put(url(world, f"/{doc.pk}"), {"split": "train"}, format="json").status_code == 405


def test_documents_detail_of_another_project_is_not_found(world):
    doc = world.document(project=world.other_project)
    assert world.api("admin").get(url(world, f"/{doc.pk}")).status_code == 404


def test_documents_detail_shows_annotation_and_latest_prediction(world):
    from annotation.models import Prediction

    doc = world.document()
    old = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/a")
    new = ModelVersion.objects.create(project=world.project, version="v2", bundle_path="/b")
    for version, spans in (
        (old, []),
        (new, [{"start": 0, "end": 2, "label": "PER", "score": 0.9}]),
    ):
        Prediction.objects.create(
            document=doc,
            model_version=version,
            spans=spans,
            mean_entropy=0.1,
            max_entropy=0.2,
            least_confidence=0.1,
            mnlp=-0.1,
        )
    Annotation.objects.create(document=doc, annotator=world.annotator, spans=[], revision=3)
    data = world.api("annotator").get(url(world, f"/{doc.pk}")).json()
    assert data["prediction"]["model_version"] == "v2"
    assert data["prediction"]["spans"][0]["label"] == "PER"
    assert data["annotation"]["revision"] == 3
    assert data["annotation"]["annotator"] == "annotator"


@pytest.mark.parametrize("role", ROLES)
def test_documents_delete_one_permissions(world, role):
    doc = world.document()
    Annotation.submit(doc, world.admin, [{"start": 0, "end": 2, "label": "PER"}], 0)
    response = world.api(role).delete(url(world, f"/{doc.pk}"))
    assert response.status_code == expected(("admin",), role, 204)
    gone = response.status_code == 204
    assert Document.objects.filter(pk=doc.pk).exists() is not gone
    assert Annotation.objects.filter(document_id=doc.pk).exists() is not gone


def test_documents_delete_one_of_another_project_is_not_found(world):
    doc = world.document(project=world.other_project)
    assert world.api("admin").delete(url(world, f"/{doc.pk}")).status_code == 404
    assert Document.objects.filter(pk=doc.pk).exists()


def test_documents_delete_what_the_filters_list(world):
    keep = world.document("北京的天气", split="eval")
    wrong = [world.document(f"错误导入 {k}") for k in range(3)]
    other = world.document("错误导入", project=world.other_project)
    admin = world.api("admin")
    listed = admin.get(url(world, "?q=错误导入&split=train")).json()["count"]
    response = admin.delete(url(world, "?q=错误导入&split=train"))
    assert response.status_code == 200 and response.json() == {"deleted": listed} == {"deleted": 3}
    assert not Document.objects.filter(pk__in=[d.pk for d in wrong]).exists()
    assert Document.objects.filter(pk__in=[keep.pk, other.pk]).count() == 2


@pytest.mark.parametrize("query", ["", "?q=", "?ordering=id"])
def test_documents_delete_without_a_filter_deletes_nothing(world, query):
    world.document()
    response = world.api("admin").delete(url(world, query))
    assert response.status_code == 400
    assert "filters" in response.json()["error"]["detail"]
    assert Document.objects.count() == 1


def test_documents_delete_by_filter_needs_an_admin(world):
    world.document()
    assert world.api("annotator").delete(url(world, "?split=train")).status_code == 403
    assert Document.objects.count() == 1
