"""The ONNX engine on a tiny real graph: offsets, blank texts, long texts, batching."""

import threading

import numpy as np
import pytest
from django.test import override_settings

from inference.bundle import BundleError
from inference.engine import (
    GRAPH_ROWS,
    MIN_LANE_BATCH,
    UNCERTAINTY_KEYS,
    ModelBundle,
    ModelNotReady,
    trimmed_entities,
)
from inference.windows import split_windows

from .tiny_bundle import EMBED_DIM, build_tiny_bundle


@pytest.fixture
def engine(tiny_bundle):
    return ModelBundle(tiny_bundle, int8=False, threads=1).load()


def _spans(prediction):
    return [(e.start, e.end, e.label, e.text) for e in prediction.entities]


def test_engine_loads_and_describes_the_bundle(engine):
    assert engine.ready
    assert engine.version == "tiny-1"
    assert engine.labels[0] == "O" and len(engine.labels) == 9
    assert engine.entity_types == ["LOC", "PER"]
    assert engine.model_file == "model.onnx"
    assert engine.embedding_dim == EMBED_DIM


def test_engine_refuses_a_tampered_bundle_before_loading(tiny_bundle):
    with open(tiny_bundle / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    model = ModelBundle(tiny_bundle, int8=False)
    with pytest.raises(BundleError, match="model.onnx"):
        model.load()
    assert not model.ready
    with pytest.raises(ModelNotReady):
        model.predict(["张三"])


def test_engine_finds_entities_with_their_text(engine):
    [result] = engine.predict(["张三在北京。"])
    assert _spans(result) == [(0, 2, "PER", "张三"), (3, 5, "LOC", "北京")]
    assert result.tokens == 6 and result.model_version == "tiny-1"
    assert all(0.0 < e.score <= 1.0 for e in result.entities)
    assert set(result.uncertainty) == set(UNCERTAINTY_KEYS)
    assert 0.0 <= result.uncertainty["least_confidence"] <= 1.0
    assert result.uncertainty["mnlp"] <= 0.0
    assert result.uncertainty["max_entropy"] >= result.uncertainty["mean_entropy"] > 0.0
    assert result.embedding.dtype == np.float32 and result.embedding.shape == (EMBED_DIM,)
    assert result.token_entropy.shape == (6,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("😀张小三去了杭州🎉", [(1, 4, "PER", "张小三"), (6, 8, "LOC", "杭州")]),
        ("𠀀李和张三", [(1, 2, "PER", "李"), (3, 5, "PER", "张三")]),
        ("🎉🎉北京 我们", [(2, 4, "LOC", "北京")]),
        ("ab 1 李", [(5, 6, "PER", "李")]),
    ],
)
def test_engine_offsets_count_code_points(engine, text, expected):
    [result] = engine.predict([text])
    assert _spans(result) == expected
    assert result.tokens == len(text)
    assert result.token_entropy.shape == (len(text),)


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff张三在北京。",  # a BOM at the start of pasted text
        "张三\u200b在北京。",
        "张\u200b三在北京。",  # a zero-width space inside a name
        "\u200d\u200e张三在北京\u00ad。\u2060",
        "\u200b\u200b张三\u200b\u200b在\u200b北京。\u200b",
    ],
)
def test_engine_reads_past_invisible_characters(engine, text):
    """Invisible characters mean nothing to a mention, but a model that never saw one is
    thrown by it (a BOM before 张伟 made the demo model find only 张): the model reads the
    text without them, and the answer is in the text's own offsets."""
    [clean, result] = engine.predict(["张三在北京。", text])
    expected = [(e.label, e.text.replace("\u200b", "")) for e in clean.entities]
    assert [(e.label, e.text.replace("\u200b", "")) for e in result.entities] == expected
    for entity in result.entities:
        assert text[entity.start : entity.end] == entity.text
        assert entity.text[0] not in "\u200b\u200d\ufeff" and entity.text[-1] not in "\u200b"
    assert result.tokens == len(text) and result.token_entropy.shape == (len(text),)
    assert result.uncertainty == pytest.approx(clean.uncertainty)
    assert np.allclose(result.embedding, clean.embedding)
    [only] = engine.predict(["\u200b\ufeff"])
    assert only.entities == [] and only.tokens == 2


@pytest.mark.parametrize(
    ("text", "span", "expected"),
    [
        (" 张伟在北京", (0, 3), (1, 3, "张伟")),
        ("张伟\u3000在", (0, 3), (0, 2, "张伟")),
        ("\u200d张伟\u200d\ufeff", (0, 5), (1, 3, "张伟")),
        ("👨\u200d👩", (0, 2), None),  # an emoji is no mention
        ("张伟 \t 在", (2, 5), None),  # nothing but blanks: no entity
        ("张 伟", (0, 3), (0, 3, "张 伟")),  # a space inside a mention stays
        ("😀😀李明", (0, 4), (2, 4, "李明")),
        ("★★李", (0, 3), (2, 3, "李")),
        ("王芳🇨🇳", (0, 3), (0, 2, "王芳")),  # never half a flag
        ("A👨\u200d👩", (0, 3), (0, 1, "A")),
        ("张伟👍🏽\ufe0f", (0, 5), (0, 2, "张伟")),
        ("Nike™", (0, 5), (0, 4, "Nike")),
        ("在漳州一一○住", (1, 6), (1, 6, "漳州一一○")),  # ○ is a zero here (MSRA test)
        ("□□有限公司", (0, 6), (0, 6, "□□有限公司")),  # a name hidden behind squares
        ("李华：“我在广州", (0, 4), (0, 2, "李华")),  # a clause mark, an opening quote
        ("，北京。", (0, 4), (1, 3, "北京")),
        ("读《红楼梦》了", (1, 6), (1, 6, "《红楼梦》")),  # a title keeps its brackets
        ("（中国）", (0, 4), (0, 4, "（中国）")),
        ("》北京《", (0, 4), (1, 3, "北京")),  # brackets at the wrong ends go
        ("丹尼斯·霍珀", (0, 6), (0, 6, "丹尼斯·霍珀")),  # a name's middle dot stays
    ],
)
def test_engine_entities_never_start_or_end_with_blanks(text, span, expected):
    found = trimmed_entities(text, [(*span, "PER", 0.5)])
    assert [(e.start, e.end, e.text) for e in found] == ([expected] if expected else [])
    assert all(e.label == "PER" and e.score == 0.5 for e in found)


@pytest.mark.parametrize("text", ["", " ", "\n\t  ", "\u3000"])
def test_engine_blank_text_returns_nothing_without_onnx(engine, text):
    batches = engine.stats["batches"]
    [result] = engine.predict([text])
    assert engine.stats["batches"] == batches
    assert result.entities == []
    assert result.tokens == len(text)
    assert not result.embedding.any() and result.embedding.shape == (EMBED_DIM,)
    assert result.uncertainty == dict.fromkeys(UNCERTAINTY_KEYS, 0.0)


def test_engine_long_text_is_windowed_with_offsets_right(tmp_path):
    folder = build_tiny_bundle(tmp_path / "short", max_len=16, overlap=4)
    engine = ModelBundle(folder, int8=False, threads=1).load()
    filler = "我们今天很开心这里一个人"
    parts, gold, cursor = [], [], 0
    for index in range(14):
        name, label = [("张三", "PER"), ("北京", "LOC"), ("张小三", "PER")][index % 3]
        gap = filler[: 3 + (index * 5) % 9]
        parts += [gap, name]
        cursor += len(gap)
        gold.append((cursor, cursor + len(name), label, name))
        cursor += len(name)
    text = "".join(parts)
    windows = split_windows(text, 16, 4)
    assert len(windows) > 4
    straddling = [g for g in gold if any(w.start < g[0] < w.end < g[1] for w in windows)]
    assert straddling, "the text must put entities across window cuts"
    [result] = engine.predict([text])
    assert _spans(result) == gold
    assert result.tokens == len(text) and result.token_entropy.shape == (len(text),)
    assert result.embedding.shape == (EMBED_DIM,)
    assert 0.0 < result.uncertainty["least_confidence"] <= 1.0


def test_engine_reads_each_line_of_a_short_text_on_its_own(tmp_path):
    """Lines are predicted as the sentences they are: nothing spans a line break, and each
    line gets what it gets alone (offsets shifted)."""
    folder = build_tiny_bundle(tmp_path / "lines", max_len=64, overlap=4)
    engine = ModelBundle(folder, int8=False, threads=1).load()
    lines = ["我们今天张三", "北京很开心", "张小三住在北京"]
    for brk in ("\n", "\r\n", "\r"):
        text = brk.join(lines)
        [together] = engine.predict([text])
        expected, offset = [], 0
        for line in lines:
            [alone] = engine.predict([line])
            expected += [
                (s + offset, e + offset, label, name) for s, e, label, name in _spans(alone)
            ]
            offset += len(line) + len(brk)
        assert _spans(together) == expected
        assert not any(brk in name or "\r" in name for *_, name in _spans(together))
        assert together.token_entropy.shape == (len(text),)


def test_engine_batching_equals_one_by_one(tmp_path):
    folder = build_tiny_bundle(tmp_path / "b", max_len=20, overlap=5)
    texts = [
        "张三在北京。",
        "",
        "李",
        "😀张小三去了杭州🎉",
        "我们今天很开心" * 6 + "张三住在北京",
        "   ",
        "这里一个人和李",
        "𠀀北京",
        "杭州",
    ]
    batched = ModelBundle(folder, int8=False, threads=1, batch_size=3).load().predict(texts)
    single = ModelBundle(folder, int8=False, threads=1, batch_size=1).load()
    for text, together in zip(texts, batched, strict=True):
        [alone] = single.predict([text])
        assert _spans(together) == _spans(alone)
        assert [e.score for e in together.entities] == pytest.approx(
            [e.score for e in alone.entities], rel=1e-6
        )
        assert together.uncertainty == pytest.approx(alone.uncertainty, rel=1e-6, abs=1e-9)
        np.testing.assert_allclose(together.embedding, alone.embedding, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together.token_entropy, alone.token_entropy, atol=1e-6)


@pytest.mark.parametrize("in_length_order", [False, True])  # as a lane gets them: True
def test_engine_runs_the_graph_on_groups_of_similar_length(tmp_path, in_length_order):
    folder = build_tiny_bundle(tmp_path / "groups", max_len=40)
    engine = ModelBundle(folder, int8=False, threads=1, batch_size=64).load()
    texts = [f"{'北京' * (k * 5 % 9 + 1)}张三{'好' * (k % 4)}" for k in range(3 * GRAPH_ROWS + 1)]
    if in_length_order:
        texts.sort(key=len)
    shapes = []

    class Watched:  # the session, seen from outside
        def run(self, outputs, feed):
            shapes.append((len(feed["lengths"]), feed["chars"].shape[1], feed["lengths"].max()))
            return engine._session.run(outputs, feed)

    pieces = engine._run_batch(Watched(), texts)
    assert [rows for rows, _, _ in shapes] == [GRAPH_ROWS] * 3 + [1]
    assert all(width == longest for _, width, longest in shapes)  # each padded to its own
    assert [width for _, width, _ in shapes] == sorted(width for _, width, _ in shapes)
    for text, piece in zip(texts, pieces, strict=True):
        [alone] = engine._run_batch(engine._session, [text])
        assert [span[:3] for span in piece.spans] == [span[:3] for span in alone.spans]
        assert [span[3] for span in piece.spans] == pytest.approx(
            [span[3] for span in alone.spans], rel=1e-5
        )
        np.testing.assert_allclose(piece.entropy, alone.entropy, atol=1e-6)
        np.testing.assert_allclose(piece.embedding, alone.embedding, rtol=1e-5, atol=1e-6)


def test_engine_lanes_run_batches_side_by_side_with_the_same_answers(tmp_path):
    folder = build_tiny_bundle(tmp_path / "lanes", max_len=20, overlap=5)
    texts = [f"张{'三李四王五'[: k % 5 + 1]}在北京{'工作' * (k % 7)}。" for k in range(150)]
    texts[7] = "我们今天很开心" * 6 + "张三住在北京"  # windows too
    one = ModelBundle(folder, int8=False, threads=1).load()
    two = ModelBundle(folder, int8=False, threads=2, batch_size=64).load()
    assert (one.lanes, two.lanes) == (1, 2)
    seen = set()
    run_batch = two._run_batch

    def spy(session, batch):
        seen.add(threading.current_thread().name)
        return run_batch(session, batch)

    two._run_batch = spy
    for batch in (texts, texts[:20], texts[:9]):  # three batches; one split in two; one not
        seen.clear()
        for alone, laned in zip(one.predict(batch), two.predict(batch), strict=True):
            assert _spans(laned) == _spans(alone)
            assert laned.uncertainty == pytest.approx(alone.uncertainty, rel=1e-6, abs=1e-9)
            np.testing.assert_allclose(laned.embedding, alone.embedding, rtol=1e-5, atol=1e-6)
        on_lanes = any(name.startswith("nerloop-lane") for name in seen)
        assert on_lanes == (len(batch) >= 2 * MIN_LANE_BATCH)  # 9 texts run in the caller
    assert two.stats["texts"] == 150 + 20 + 9


def test_engine_deals_a_batch_out_to_its_lanes_by_length(tiny_bundle):
    engine = ModelBundle(tiny_bundle, int8=False, threads=2, batch_size=4)
    assert engine._chunks(list(range(10))) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    engine.batch_size = 64
    assert engine._chunks(list(range(20))) == [list(range(0, 20, 2)), list(range(1, 20, 2))]
    assert engine._chunks(list(range(15))) == [list(range(15))]  # halves under 8: one part


def test_engine_serves_the_int8_twin_when_asked(tmp_path):
    folder = build_tiny_bundle(tmp_path / "q", int8=True)
    int8 = ModelBundle(folder, int8=True, threads=1).load()
    fp32 = ModelBundle(folder, int8=False, threads=1).load()
    assert int8.model_file == "model.int8.onnx" and fp32.model_file == "model.onnx"
    text = "张三在北京，李去了杭州。"
    assert _spans(int8.predict([text])[0]) == _spans(fp32.predict([text])[0])


def test_engine_falls_back_to_fp32_without_int8_twin(tiny_bundle):
    assert ModelBundle(tiny_bundle, int8=True).load().model_file == "model.onnx"


def test_engine_defaults_come_from_settings(tiny_bundle):
    with override_settings(SERVE_INT8=False, ORT_THREADS=1):
        model = ModelBundle(tiny_bundle)
    assert model.int8 is False and model.threads == 1


def test_engine_rejects_non_text_input(engine):
    with pytest.raises(TypeError):
        engine.predict(["张三", 3])


def test_engine_unload_stops_serving(engine):
    engine.unload()
    assert not engine.ready
    with pytest.raises(ModelNotReady):
        engine.predict(["张三"])


def test_engine_refuses_labels_that_do_not_fit_the_graph(tiny_bundle):
    import json

    from inference import bundle

    labels = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
    (tiny_bundle / "labels.json").write_text(json.dumps(labels))
    zeros = [[0.0] * 5 for _ in range(5)]
    crf = {"transitions": zeros, "start": [0.0] * 5, "end": [0.0] * 5}
    (tiny_bundle / "crf.json").write_text(json.dumps(crf))
    bundle.write_manifest(tiny_bundle)
    with pytest.raises(BundleError, match="emits 9 tags"):
        ModelBundle(tiny_bundle, int8=False).load()
