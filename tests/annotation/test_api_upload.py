"""POST /projects/{id}/documents/upload: files in every format, all-or-nothing validation."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotation.formats import FORMATS
from annotation.models import Annotation, Document, Prediction
from learner.models import ModelVersion
from tests.base import ROLES, expected

pytestmark = pytest.mark.django_db

CONLL = "张 B-PER\n三 E-PER\n在 O\n北 B-LOC\n京 E-LOC\n\n好 O\n天 O\n"
JSONL = (
    '{"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"}]}\n'
    '{"text": "没有标注的句子"}\n'
)
CLUENER = '{"text": "浙商银行的叶老桂", "label": {"ORG": {"浙商银行": [[0, 3]]}}}\n'
LABEL_STUDIO = (
    '[{"data": {"text": "张三在北京"}, "annotations": [{"result": [{"value": '
    '{"start": 3, "end": 5, "text": "北京", "labels": ["LOC"]}}]}]}]'
)


def upload(world, role, content: str, name: str, **fields):
    file = SimpleUploadedFile(name, content.encode("utf-8"))
    return world.api(role).post(
        f"/api/v1/projects/{world.project.pk}/documents/upload",
        {"file": file, **fields},
        format="multipart",
    )


@pytest.mark.parametrize("role", ROLES)
def test_upload_permissions(world, role):
    response = upload(world, role, JSONL, "docs.jsonl")
    assert response.status_code == expected(("admin",), role, 201)
    assert Document.objects.exists() == (role == "admin")


@pytest.mark.parametrize(
    ("content", "name", "texts", "spans"),
    [
        (CONLL, "train.bmes", ["张三在北京", "好天"], [[(0, 2, "PER"), (3, 5, "LOC")], []]),
        (JSONL, "docs.jsonl", ["张三在北京", "没有标注的句子"], [[(0, 2, "PER")], None]),
        (CLUENER, "dev.json", ["浙商银行的叶老桂"], [[(0, 4, "ORG")]]),
        (LABEL_STUDIO, "export.json", ["张三在北京"], [[(3, 5, "LOC")]]),
    ],
)
def test_upload_detects_each_format(world, content, name, texts, spans):
    response = upload(world, "admin", content, name)
    assert response.status_code == 201, response.json()
    assert response.json()["documents"] == len(texts) and "ids" not in response.json()
    documents = list(Document.objects.order_by("id"))
    assert [doc.text for doc in documents] == texts
    for doc, expected_spans in zip(documents, spans, strict=True):
        annotation = Annotation.objects.filter(document=doc).first()
        if expected_spans is None:
            assert annotation is None and doc.status == "new"
            continue
        assert annotation.validated and doc.status == "validated"
        assert [(s["start"], s["end"], s["label"]) for s in annotation.spans] == expected_spans


def test_upload_covers_every_registered_format():
    assert set(FORMATS) == {"cluener", "conll", "jsonl", "label_studio"}


def test_upload_with_a_named_format_and_scheme(world):
    content = "张 B-PER\n三 I-PER\n"
    response = upload(world, "admin", content, "noext", format="conll", scheme="bio")
    assert response.status_code == 201, response.json()
    assert Annotation.objects.get().spans == [{"start": 0, "end": 2, "label": "PER"}]


def test_upload_gold_none_imports_text_only(world):
    response = upload(world, "admin", CONLL, "pool.bmes", gold="none", split="train")
    assert response.status_code == 201
    assert response.json()["annotated"] == 0
    assert not Annotation.objects.exists()
    assert set(Document.objects.values_list("status", flat=True)) == {"new"}


def test_upload_of_label_studio_reads_an_empty_answer_as_no_entity(world):
    """A completed Label Studio task with an empty result is a human's "no entity"; a task
    nobody answered (or whose answer was cancelled) joins the pool."""
    tasks = [
        {"data": {"text": "今天天气很好。"}, "annotations": [{"result": []}]},
        {"data": {"text": "明天下雨。"}, "annotations": [{"was_cancelled": True, "result": []}]},
        {"data": {"text": "后天放晴。"}},
    ]
    response = upload(world, "admin", json.dumps(tasks, ensure_ascii=False), "tasks.json")
    assert response.status_code == 201, response.json()
    assert response.json()["annotated"] == 1
    statuses = dict(Document.objects.values_list("text", "status"))
    assert statuses == {"今天天气很好。": "validated", "明天下雨。": "new", "后天放晴。": "new"}
    assert Annotation.objects.get().spans == []


def test_upload_to_eval_split(world):
    response = upload(world, "admin", CONLL, "eval.bmes", split="eval")
    assert response.status_code == 201
    assert set(Document.objects.values_list("split", flat=True)) == {"eval"}


def test_upload_says_when_its_answers_start_a_training_run(world):
    """Imported gold counts as validated annotations: a file that brings the project to its
    retrain threshold starts a run at the next periodic check, and the answer says so."""
    upload(world, "admin", CONLL, "eval.bmes", split="eval")  # something to score a model on
    world.project.retrain_threshold = 3
    world.project.save()
    first = upload(world, "admin", JSONL, "a.jsonl", split="train").json()
    assert (first["annotated"], first["retrain_due"]) == (1, False)  # 1 of 3
    second = upload(world, "admin", CONLL, "b.bmes", split="train").json()
    assert (second["annotated"], second["retrain_due"]) == (2, True)  # 3 of 3
    world.project.retrain_threshold = 0  # off: imports never start a run
    world.project.save()
    third = upload(world, "admin", CLUENER, "c.json", split="train").json()
    assert (third["annotated"], third["retrain_due"]) == (1, False)


@pytest.mark.parametrize(
    ("content", "name", "line", "problem"),
    [
        (
            '{"text": "好"}\n{"text": "张三", "entities": [{"start": 0, "end": 3, "label": "PER"}]}\n',
            "a.jsonl",
            2,
            "outside the text",
        ),
        (
            '{"text": "好"}\n{"text": "张三丰", "entities": [{"start": 0, "end": 2, "label": '
            '"PER"}, {"start": 1, "end": 3, "label": "PER"}]}\n',
            "a.jsonl",
            2,
            "overlap",
        ),
        ('{"text": "好"}\n{"text": "张三"\n', "a.jsonl", 2, "invalid JSON"),
        ("好 O\n\n张 B-PER\n三 O\n天 E-PER\n", "a.bmes", 4, "never closed"),
    ],
)
def test_upload_rejects_a_bad_file_naming_the_line(world, content, name, line, problem):
    response = upload(world, "admin", content, name)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "E103"
    assert error["detail"]["problems"][0]["line"] == line
    assert problem in error["detail"]["message"]
    assert name in error["detail"]["message"]
    assert not Document.objects.exists()


def test_upload_of_json_lines_names_every_bad_line_at_once(world):
    content = (
        '{"text": "张三", "entities": [{"start": 0, "end": 3, "label": "PER"}]}\n'
        '{"text": "好"}\n'
        '{"text": "张三丰", "entities": [{"start": 0, "end": 2, "label": "PER"}, '
        '{"start": 1, "end": 3, "label": "PER"}]}\n'
        '{"text": "李四"\n'
    ).encode() + b'{"text": "\xff"}\n'
    file = SimpleUploadedFile("bad.jsonl", content)
    response = world.api("admin").post(
        f"/api/v1/projects/{world.project.pk}/documents/upload", {"file": file}, format="multipart"
    )
    problems = response.json()["error"]["detail"]["problems"]
    assert [p["line"] for p in problems] == [1, 3, 4, 5]
    assert ["outside" in problems[0]["problem"], "overlap" in problems[1]["problem"]] == [True] * 2
    assert "invalid JSON" in problems[2]["problem"] and "UTF-8" in problems[3]["problem"]
    assert "more" not in response.json()["error"]["detail"]
    assert not Document.objects.exists()


def test_upload_rejects_a_label_outside_the_schema_naming_the_document(world):
    content = JSONL + '{"text": "周一见", "entities": [{"start": 0, "end": 2, "label": "TIME"}]}\n'
    response = upload(world, "admin", content, "a.jsonl")
    assert response.status_code == 400
    detail = response.json()["error"]["detail"]
    problem = detail["problems"][0]
    assert problem["document"] == 3 and problem["line"] == 3
    assert "'TIME' is not in the schema" in problem["problem"]
    assert detail["message"].startswith("a.jsonl line 3: span (0, 2, 'TIME')")
    assert not Document.objects.exists() and not Annotation.objects.exists()


def test_upload_names_the_first_line_of_a_refused_conll_sentence(world):
    content = "张 B-PER\n三 I-PER\n\n\n北 B-TIME\n京 I-TIME\n"
    response = upload(world, "admin", content, "a.conll")
    message = response.json()["error"]["detail"]["message"]
    assert message.startswith("a.conll line 5: span (0, 2, 'TIME'): label 'TIME' is not in")


def test_upload_of_an_empty_file_names_no_document(world):
    detail = upload(world, "admin", "\n", "a.conll").json()["error"]["detail"]
    assert detail["message"] == "a.conll: the file holds no documents"
    assert detail["problems"] == [{"problem": "the file holds no documents"}]


def test_upload_takes_the_scheme_in_any_case_and_drops_empty_export_markers(world):
    response = upload(world, "admin", CONLL, "a.conll", scheme="BIOES")
    assert response.status_code == 201, response.json()
    content = '{"text": "好", "entities": [], "nerloop_source": null, "nerloop_split": null}\n'
    assert upload(world, "admin", content, "b.jsonl").status_code == 201
    assert Document.objects.get(text="好").meta == {}


def test_upload_extend_labels_adds_them(world):
    content = '{"text": "周一见", "entities": [{"start": 0, "end": 2, "label": "TIME"}]}\n'
    response = upload(world, "admin", content, "a.jsonl", extend_labels="true")
    assert response.status_code == 201
    world.project.refresh_from_db()
    assert "TIME" in world.project.label_names()


@pytest.mark.parametrize(
    ("content", "name", "problem"),
    [
        ("\n\n", "blank.jsonl", "no documents"),
        ("hello", "notes.pdf", "cannot tell the format"),
        ('{"text": "\udcff"}', "bad.jsonl", "not UTF-8"),
    ],
)
def test_upload_rejects_unreadable_files(world, content, name, problem):
    file = SimpleUploadedFile(name, content.encode("utf-8", errors="surrogateescape"))
    response = world.api("admin").post(
        f"/api/v1/projects/{world.project.pk}/documents/upload", {"file": file}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "E103"
    assert problem in response.json()["error"]["detail"]["message"]
    assert not Document.objects.exists()


def test_upload_of_the_resume_corpus_keeps_every_sentence(world, datasets_dir):
    path = datasets_dir / "resume" / "dev.char.bmes"
    labels = [{"name": n} for n in ("NAME", "ORG", "TITLE", "EDU", "CONT", "PRO", "RACE", "LOC")]
    world.project.labels = labels
    world.project.save()
    with path.open("rb") as handle:
        response = world.api("admin").post(
            f"/api/v1/projects/{world.project.pk}/documents/upload",
            {"file": handle},
            format="multipart",
        )
    assert response.status_code == 201, response.json()
    assert response.json()["documents"] == 463
    assert Annotation.objects.filter(validated=True).count() == 463


def test_upload_strict_false_repairs_an_open_entity(world):
    content = "张 B-PER\n三 M-PER\n\n好 O\n"
    refused = upload(world, "admin", content, "a.bmes")
    assert refused.status_code == 400
    response = upload(world, "admin", content, "a.bmes", strict="false")
    assert response.status_code == 201, response.json()
    assert Annotation.objects.get(document__text="张三").spans == [
        {"start": 0, "end": 2, "label": "PER"}
    ]


@pytest.mark.parametrize("query", ["", "?predictions=1"])
@pytest.mark.parametrize("fmt", ["jsonl", "cluener", "label_studio"])
def test_upload_of_an_export_restores_answers_and_splits(world, fmt, query):
    """A project exported and uploaded again (no split named) keeps its validated answers,
    "no entity" included, and its eval set; drafts and model spans come back as text only."""
    version = ModelVersion.objects.create(project=world.project, version="v1", bundle_path="/x")
    named = world.document("张三在北京", status="validated", meta={"id": 1})
    Annotation.objects.create(
        document=named, validated=True, spans=[{"start": 0, "end": 2, "label": "PER"}]
    )
    empty = world.document("今天天气很好", status="validated")
    Annotation.objects.create(document=empty, validated=True, spans=[])
    gold = world.document("王五在上海", status="validated", split="eval")
    Annotation.objects.create(
        document=gold, validated=True, spans=[{"start": 3, "end": 5, "label": "LOC"}]
    )
    draft = world.document("赵六去广州", status="annotated")
    Annotation.objects.create(
        document=draft, validated=False, spans=[{"start": 0, "end": 2, "label": "PER"}]
    )
    guessed = world.document("李四去了上海", status="predicted", predicted_by=version)
    Prediction.objects.create(
        document=guessed, model_version=version, mean_entropy=0.1, max_entropy=0.2,
        least_confidence=0.1, mnlp=-0.1, spans=[{"start": 4, "end": 6, "label": "LOC", "score": 0.9}],
    )  # fmt: skip
    world.document("没有预测", split="eval")
    api = world.api("admin")
    exported = api.get(f"/api/v1/projects/{world.project.pk}/export/{fmt}{query}")
    content = b"".join(exported.streaming_content).decode("utf-8")
    Document.objects.all().delete()

    response = upload(world, "admin", content, f"export.{fmt}", format=fmt)
    assert response.status_code == 201, response.json()
    assert response.json()["annotated"] == 3  # the human answers, "no entity" included
    docs = {doc.text: doc for doc in Document.objects.select_related("annotation")}
    assert docs["张三在北京"].annotation.spans == [{"start": 0, "end": 2, "label": "PER"}]
    assert docs["今天天气很好"].annotation.spans == []
    assert docs["今天天气很好"].status == "validated"
    assert docs["王五在上海"].annotation.spans == [{"start": 3, "end": 5, "label": "LOC"}]
    for text in ("赵六去广州", "李四去了上海", "没有预测"):
        assert not Annotation.objects.filter(document=docs[text]).exists()
        assert docs[text].status == "new"
    splits = {text: doc.split for text, doc in docs.items()}
    assert splits == {
        "张三在北京": "train", "今天天气很好": "train", "王五在上海": "eval",
        "赵六去广州": "train", "李四去了上海": "train", "没有预测": "eval",
    }  # fmt: skip
    assert docs["张三在北京"].meta == {"id": 1}  # the markers are not kept as meta

    # a split named in the upload puts every document there
    Document.objects.all().delete()
    response = upload(world, "admin", content, f"export.{fmt}", format=fmt, split="train")
    assert response.status_code == 201
    assert set(Document.objects.values_list("split", flat=True)) == {"train"}


@pytest.mark.parametrize(
    ("good_lines", "name", "line"),
    [(10, "lines.jsonl", 11), (20_000, "lines.jsonl", 20_001), (5, "sentences.bmes", 6)],
)
def test_upload_names_the_line_of_a_byte_that_is_not_utf8(world, good_lines, name, line):
    good = '{"text": "张三在北京"}\n' if name.endswith("jsonl") else "好 O\n"
    content = good.encode() * good_lines + "坏".encode()[:2] + b"\n" + good.encode()
    file = SimpleUploadedFile(name, content)
    response = world.api("admin").post(
        f"/api/v1/projects/{world.project.pk}/documents/upload", {"file": file}, format="multipart"
    )
    assert response.status_code == 400
    problem = response.json()["error"]["detail"]["problems"][0]
    assert problem["line"] == line and "not UTF-8" in problem["problem"]
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    ("content", "name", "says"),
    [
        ('{"text": "好"}\n{"text": "\\ud800abc"}\n', "a.jsonl", "text contains an unpaired"),
        ('{"text": "张三\\u0000在北京"}\n', "a.jsonl", "text contains a NUL"),
        ('{"text": "张三", "k": ["\\udfff"]}\n', "a.jsonl", "meta.k[0]: contains an unpaired"),
        ("张 O\n\x00 O\n", "a.bmes", "text contains a NUL"),
        (
            '{"text": "张三", "entities": [{"start": 0, "end": 2, "label": "P\\ud800"}]}\n',
            "a.jsonl",
            "is not a valid label name",
        ),
    ],
)
def test_upload_refuses_strings_that_cannot_be_stored(world, content, name, says):
    response = upload(world, "admin", content, name, extend_labels="true")
    assert response.status_code == 400, response.json()
    assert says in response.json()["error"]["detail"]["message"]
    assert not Document.objects.exists()
    world.project.refresh_from_db()
    assert world.project.label_names() == ["PER", "LOC", "ORG"]


def test_upload_refuses_a_document_over_the_length_limit(world, settings):
    settings.IMPORT_MAX_CHARS = 5
    response = upload(world, "admin", '{"text": "好"}\n{"text": "张三在北京了"}\n', "a.jsonl")
    assert response.status_code == 400
    problem = response.json()["error"]["detail"]["problems"][0]
    assert problem["document"] == 2 and "6 characters; the limit is 5" in problem["problem"]
    assert not Document.objects.exists()


@pytest.mark.parametrize("name", ["deep.jsonl", "deep.json"])
def test_upload_refuses_json_nested_too_deeply(world, name):
    record = '{"text": "张三", "k": ' + "[" * 100_000 + "]" * 100_000 + "}"
    content = record + "\n" if name.endswith("jsonl") else '[{"data": ' + record + "}]"
    response = upload(world, "admin", content, name)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["detail"]["message"]
    assert not Document.objects.exists()


def test_upload_says_when_it_stopped_counting_problems(world):
    """Past 100 problems the check stops: the count of the rest is a lower bound, and says so."""
    line = json.dumps({"text": "张三", "entities": [{"start": 0, "end": 2, "label": "X"}]})
    many = upload(world, "admin", "\n".join([line] * 300), "a.jsonl")
    detail = many.json()["error"]["detail"]
    assert len(detail["problems"]) == 20 and detail["more"] == 81 and detail["more_at_least"]
    few = upload(world, "admin", "\n".join([line] * 30), "a.jsonl")
    detail = few.json()["error"]["detail"]
    assert detail["more"] == 10 and "more_at_least" not in detail
    assert not Document.objects.exists()


def test_upload_of_gold_is_nobodys_work_today(world):
    """Imported answers count for training and the eval split, not as the uploader's output
    (done today, activity per annotator)."""
    line = json.dumps({"text": "张三在北京", "entities": [{"start": 0, "end": 2, "label": "PER"}]})
    assert upload(world, "admin", line, "gold.jsonl").status_code == 201
    assert Annotation.objects.get().annotator is None
    progress = world.api("admin").get(f"/api/v1/projects/{world.project.pk}/progress").json()
    assert progress["done_today"] == 0
    activity = world.api("admin").get(f"/api/v1/projects/{world.project.pk}/activity").json()
    assert activity == []


def test_upload_counts_texts_the_project_already_has_and_can_skip_them(world):
    first = upload(world, "admin", JSONL, "docs.jsonl", split="eval").json()
    assert (first["documents"], first["duplicates"], first["skipped"]) == (2, 0, 0)
    # the same file again, to train: kept by default, but said, with the eval overlap
    again = upload(world, "admin", JSONL, "docs.jsonl").json()
    assert (again["documents"], again["duplicates"], again["duplicates_other_split"]) == (2, 2, 2)
    assert Document.objects.filter(project=world.project).count() == 4
    # skipped on request: nothing stored, nothing changed
    skipped = upload(world, "admin", JSONL, "docs.jsonl", skip_duplicates="true").json()
    assert (skipped["documents"], skipped["duplicates"], skipped["skipped"]) == (0, 2, 2)
    assert Document.objects.filter(project=world.project).count() == 4


def test_upload_counts_and_skips_a_text_the_file_holds_twice(world):
    content = "中航航空装备有限责任公司监事；\n李四去了上海\n中航航空装备有限责任公司监事；\n"
    kept = upload(world, "admin", content, "pool.txt", skip_duplicates="false").json()
    assert (kept["documents"], kept["duplicates"], kept["skipped"]) == (3, 1, 0)
    Document.objects.all().delete()
    skipped = upload(world, "admin", content, "pool.txt", skip_duplicates="true").json()
    assert (skipped["documents"], skipped["duplicates"], skipped["skipped"]) == (2, 1, 1)
    assert sorted(Document.objects.values_list("text", flat=True)) == [
        "中航航空装备有限责任公司监事；",
        "李四去了上海",
    ]


def test_bulk_create_skips_duplicates_and_gives_ids_of_what_it_stored(world):
    url = f"/api/v1/projects/{world.project.pk}/documents"
    api = world.api("admin")
    api.post(url, [{"text": "张三在北京"}], format="json")
    body = {"documents": [{"text": "张三在北京"}, {"text": "新的句子"}], "skip_duplicates": True}
    answer = api.post(url, body, format="json").json()
    assert (answer["documents"], answer["duplicates"], answer["skipped"]) == (1, 1, 1)
    assert [Document.objects.get(pk=pk).text for pk in answer["ids"]] == ["新的句子"]


def test_upload_of_plain_text_makes_one_document_per_line(world):
    content = "很开心能加入CCM，和大家一起。\n\n  张三在北京工作。  \r\n李四去了上海\n"
    body = upload(world, "admin", content, "raw.txt").json()  # guessed: not token + tag lines
    assert (body["documents"], body["annotated"]) == (3, 0)
    texts = list(Document.objects.filter(project=world.project).values_list("text", flat=True))
    assert sorted(texts) == sorted(
        ["很开心能加入CCM，和大家一起。", "张三在北京工作。", "李四去了上海"]
    )
    # a .txt of token/tag lines is still CoNLL
    conll = upload(world, "admin", CONLL, "tagged.txt").json()
    assert conll["annotated"] == 2
    named = upload(world, "admin", "一行\n", "anything.dat", format="text")
    assert named.status_code == 201 and named.json()["documents"] == 1


def test_upload_can_leave_out_spans_of_other_labels(world):
    content = (
        '{"text": "张三在玩王者荣耀", "label": {"PER": {"张三": [[0, 1]]}, "game": {"王者荣耀": [[4, 7]]}}}\n'
        '{"text": "英雄联盟很火", "label": {"game": {"英雄联盟": [[0, 3]]}}}\n'
    )
    refused = upload(world, "admin", content, "c.json")
    assert refused.status_code == 400 and "is not in the schema" in json.dumps(refused.json())
    body = upload(world, "admin", content, "c.json", drop_unknown_labels="true").json()
    assert (body["documents"], body["annotated"], body["spans_dropped"]) == (2, 2, 2)
    assert world.project.label_names() == ["PER", "LOC", "ORG"]  # nothing added
    spans = {a.document.text: a.spans for a in Annotation.objects.select_related("document")}
    assert spans["张三在玩王者荣耀"] == [{"start": 0, "end": 2, "label": "PER"}]
    assert spans["英雄联盟很火"] == []  # annotated: no entity of the project's types


def test_upload_larger_than_the_body_limit_is_413_and_imports_nothing(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048  # NERLOOP_MAX_BODY_BYTES
    big = "".join(f'{{"text": "第{i}句话"}}\n' for i in range(200))
    response = upload(world, "admin", big, "big.jsonl")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert "NERLOOP_MAX_BODY_BYTES" in response.json()["error"]["detail"]
    assert not Document.objects.exists()
    assert upload(world, "admin", JSONL, "small.jsonl").status_code == 201


def test_upload_says_how_many_eval_documents_came_without_an_answer(world):
    """Records without spans import as text to annotate: in the eval split they are not
    scored on (and the sentences without entities, where false positives show, go missing)."""
    content = (
        '{"text": "张三在北京", "label": {"PER": {"张三": [[0, 1]]}}}\n'
        '{"text": "今天天气很好", "label": {}}\n'
        '{"text": "明天也很好"}\n'
    )
    body = upload(world, "admin", content, "c.json", split="eval").json()
    assert (body["documents"], body["annotated"], body["eval_unanswered"]) == (3, 1, 2)
    body = upload(world, "admin", content.replace("张三", "李四"), "d.json", split="eval",
                  gold="all").json()  # fmt: skip
    assert (body["annotated"], body["eval_unanswered"]) == (3, 0)
    assert upload(world, "admin", "一句\n", "e.txt").json()["eval_unanswered"] == 0  # train
