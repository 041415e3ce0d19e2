import json

import numpy as np
import pytest

from inference.features import (
    BIGRAM_END,
    LEXICON_TYPES,
    PAD,
    UNK,
    WORD_COLUMNS,
    Featurizer,
    Lexicon,
    codepoints,
    normalize,
)

LEXICON = Lexicon([("北京", "ns"), ("北京大学", "nt"), ("张三", "nr"), ("大学生", "other")])


def column(kind: str, flag: str) -> int:
    return LEXICON_TYPES.index(kind) * len(WORD_COLUMNS) + WORD_COLUMNS.index(flag)


def flags_at(row: np.ndarray) -> set[str]:
    return {f"{LEXICON_TYPES[j // 4]}-{WORD_COLUMNS[j % 4]}" for j in np.nonzero(row)[0]}


@pytest.fixture
def featurizer() -> Featurizer:
    return Featurizer.build(["张三在北京大学读书。", "北京欢迎你"], lexicon=LEXICON, max_len=64)


def test_features_encode_keys_shapes_and_lengths(featurizer):
    texts = ["张三在北京", "", "北京大学读书。"]
    out = featurizer.encode(texts)
    assert list(out) == featurizer.input_names == ["chars", "bigrams", "lexicon", "lengths"]
    assert out["chars"].shape == out["bigrams"].shape == (3, 7)
    assert out["lexicon"].shape == (3, 7, LEXICON.dim)
    assert out["chars"].dtype == out["bigrams"].dtype == out["lengths"].dtype == np.int64
    assert out["lexicon"].dtype == np.float32
    assert out["lengths"].tolist() == [5, 0, 7]
    assert (out["chars"][0, 5:] == PAD).all() and (out["chars"][1] == PAD).all()


def test_features_char_ids_unknown_and_padding(featurizer):
    out = featurizer.encode(["张三吃饭"])
    ids = out["chars"][0].tolist()
    assert ids[0] == featurizer.chars.index("张") and ids[1] == featurizer.chars.index("三")
    assert ids[2:] == [UNK, UNK]


def test_features_bigram_end_marker(featurizer):
    out = featurizer.encode(["读书。", "你", "北京"])
    assert [featurizer.bigrams[i] for i in out["bigrams"][0]] == ["读书", "书。", "。" + BIGRAM_END]
    assert featurizer.bigrams[out["bigrams"][1, 0]] == "你" + BIGRAM_END
    assert featurizer.bigrams[out["bigrams"][2, 0]] == "北京"
    assert out["bigrams"][2, 1] == UNK  # "京" never ended a training text


def test_features_lexicon_bmes_flags_typed(featurizer):
    out = featurizer.encode(["在北京大学生"])["lexicon"][0]
    assert flags_at(out[0]) == set()
    assert flags_at(out[1]) == {"ns-B", "nt-B"}
    assert flags_at(out[2]) == {"ns-E", "nt-M"}
    assert flags_at(out[3]) == {"nt-M", "other-B"}
    assert flags_at(out[4]) == {"nt-E", "other-M"}
    assert flags_at(out[5]) == {"other-E"}


def test_features_lexicon_never_crosses_texts(featurizer):
    out = featurizer.encode(["我在北", "京"])["lexicon"]
    assert not out.any()


def test_features_untyped_lexicon_has_one_group():
    lexicon = Lexicon([("北京", "ns"), ("大学", "other")], typed=False)
    featurizer = Featurizer.build(["北京大学"], lexicon=lexicon)
    out = featurizer.encode(["北京大学"])["lexicon"][0]
    assert out.shape == (4, len(WORD_COLUMNS))
    assert out[:, 0].tolist() == [1, 0, 1, 0] and out[:, 2].tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize(
    "text",
    ["北京😀大学", "𠀋𠀌北京", " 北 京 ", "ＡＢＣ北京abc", "\u3000北京"],
)
def test_features_one_position_per_code_point(featurizer, text):
    out = featurizer.encode([text])
    assert out["lengths"][0] == len(text)
    assert out["chars"].shape[1] == len(text)


def test_features_fullwidth_and_case_fold_to_one_id():
    featurizer = Featurizer.build(["abc 北京"])
    wide, narrow = featurizer.encode(["ＡＢｃ", "abc"])["chars"]
    assert wide.tolist() == narrow.tolist()
    assert UNK not in narrow.tolist()


def test_features_save_and_from_bundle_round_trip(tmp_path, featurizer):
    featurizer.save(tmp_path)
    assert json.loads((tmp_path / "vocab.json").read_text("utf-8"))["chars"][:2] == [
        "<pad>",
        "<unk>",
    ]
    assert (tmp_path / "lexicon.txt").read_text("utf-8").splitlines()[0] == "北京\tns"
    assert json.loads((tmp_path / "config.json").read_text())["features"]["lexicon_dim"] == 20
    loaded = Featurizer.from_bundle(tmp_path)
    texts = ["张三在北京大学读书。", "新的字符😀"]
    for key, value in featurizer.encode(texts).items():
        np.testing.assert_array_equal(loaded.encode(texts)[key], value)


def test_features_save_keeps_other_config_keys(tmp_path, featurizer):
    (tmp_path / "config.json").write_text(json.dumps({"arch": "bilstm_crf", "max_len": 64}))
    featurizer.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["arch"] == "bilstm_crf" and "features" in config


def test_features_without_bigrams_or_lexicon(tmp_path):
    featurizer = Featurizer.build(["北京"], bigrams=False)
    assert featurizer.input_names == ["chars", "lengths"]
    featurizer.save(tmp_path)
    assert not (tmp_path / "lexicon.txt").exists()
    assert Featurizer.from_bundle(tmp_path).input_names == ["chars", "lengths"]


def test_features_extend_keeps_old_indexes(featurizer):
    extended = Featurizer.build(["新词来了", "北京"], base=featurizer)
    assert extended.chars[: len(featurizer.chars)] == featurizer.chars
    assert extended.bigrams[: len(featurizer.bigrams)] == featurizer.bigrams
    assert "新" in extended.chars and extended.lexicon is featurizer.lexicon


def test_features_jieba_dictionary_types():
    lexicon = Lexicon.from_jieba()
    assert lexicon.entries["北京"] == "ns"
    assert lexicon.entries["北京大学"] == "nt"
    assert min(len(w) for w in lexicon.entries) == 2 and max(len(w) for w in lexicon.entries) == 6
    featurizer = Featurizer.build(["我爱北京天安门"], lexicon=lexicon)
    out = featurizer.encode(["我爱北京天安门"])["lexicon"][0]
    assert out[2, column("ns", "B")] == 1 and out[3, column("ns", "E")] == 1


def test_features_rare_split_types_survive_a_bundle(tmp_path):
    lexicon = Lexicon.from_jieba(rare_below=10)
    assert len(lexicon.types) == 2 * len(LEXICON_TYPES) and lexicon.dim == 40
    assert lexicon.entries["北京"] == "ns"  # a common word keeps its plain type
    assert any(kind.endswith("_rare") for kind in lexicon.entries.values())
    featurizer = Featurizer.build(["我爱北京天安门"], lexicon=lexicon)
    featurizer.save(tmp_path)
    loaded = Featurizer.from_bundle(tmp_path)
    assert loaded.lexicon.types == lexicon.types
    text = ["张三丰在北京大学旁边的天安门广场"]
    np.testing.assert_array_equal(
        loaded.encode(text)["lexicon"], featurizer.encode(text)["lexicon"]
    )


def test_features_lexicon_word_with_two_types():
    lexicon = Lexicon(
        [("人民日报", "ORG"), ("人民日报", "BOOK"), ("日报", "BOOK")], types=["BOOK", "ORG"]
    )
    out = Featurizer.build(["看人民日报"], lexicon=None, gazetteer=lexicon).encode(["看人民日报"])
    flags = out["lexicon"][0]
    book_b, org_b = 0, len(WORD_COLUMNS)
    assert flags[1, book_b] == 1 and flags[1, org_b] == 1
    assert flags[4, book_b + 2] == 1 and flags[4, org_b + 2] == 1
    assert flags[3, book_b] == 1 and flags[3, org_b] == 0  # 日报 is only a BOOK


def test_features_gazetteer_follows_the_dictionary_flags(tmp_path):
    gazetteer = Lexicon([("张三", "PER"), ("北京大学", "ORG")], types=["ORG", "PER"])
    featurizer = Featurizer.build(["张三在北京大学"], lexicon=LEXICON, gazetteer=gazetteer)
    assert featurizer.lexicon_dim == LEXICON.dim + gazetteer.dim
    out = featurizer.encode(["张三在北京大学"])["lexicon"][0]
    assert out.shape == (7, LEXICON.dim + gazetteer.dim)
    per_b = LEXICON.dim + len(WORD_COLUMNS)  # PER is the gazetteer's second type
    assert out[0, per_b] == 1 and out[0, column("nr", "B")] == 1
    featurizer.save(tmp_path)
    assert (tmp_path / "gazetteer.txt").read_text("utf-8").splitlines() == [
        "张三\tPER",
        "北京大学\tORG",
    ]
    loaded = Featurizer.from_bundle(tmp_path)
    np.testing.assert_array_equal(loaded.encode(["张三在北京大学"])["lexicon"][0], out)


def test_features_hash_table_probes_past_collisions():
    from inference.features import _HashTable, _probe

    def lookup(table, queries):
        return [int(_probe(table.keys, table.values, table.shift, table.mask, q)) for q in queries]

    top = np.uint64(1) << np.uint64(60)  # same top bits: every key wants the same home slot
    keys = np.array([top + np.uint64(i) for i in range(1, 40)] + [0], dtype=np.uint64)
    values = np.arange(1, 41, dtype=np.uint64)
    table = _HashTable(keys, values)
    assert lookup(table, keys) == values.tolist()
    absent = np.array([top, top + np.uint64(99), np.uint64(12345)], dtype=np.uint64)
    assert lookup(table, absent) == [0, 0, 0]
    assert lookup(_HashTable(np.zeros(0, np.uint64), np.zeros(0, np.uint64)), absent) == [0, 0, 0]


def test_features_lexicon_matches_every_word_as_a_plain_scan_does():
    """Matching stops extending a window that no word starts with; it must still find every
    word, long ones whose prefixes are not words included, as trying every window finds them."""
    rng = np.random.default_rng(5)
    alphabet = list("北京大学中华人民共和国张三李四在读书")
    words = {"".join(rng.choice(alphabet, size=rng.integers(2, 17))) for _ in range(300)}
    words |= {"中华人民共和国", "人民", "北京大学生"}
    lexicon = Lexicon([(w, "word") for w in words], typed=False)
    texts = ["".join(rng.choice(alphabet, size=rng.integers(1, 60))) for _ in range(200)]
    texts += ["在中华人民共和国成立", "北京大学生在读书"]
    lengths = [len(t) for t in texts]
    got = lexicon.flags(
        normalize(codepoints("".join(texts))), np.repeat(np.arange(200 + 2), lengths)
    )
    expected = np.zeros_like(got)
    offset = 0
    for text in texts:
        for begin in range(len(text)):
            for end in range(begin + 1, len(text) + 1):
                if text[begin:end] in words:
                    if end - begin == 1:
                        expected[offset + begin, 3] = 1
                    else:
                        expected[offset + begin, 0] = 1
                        expected[offset + begin + 1 : offset + end - 1, 1] = 1
                        expected[offset + end - 1, 2] = 1
        offset += len(text)
    assert expected.sum() > 100
    np.testing.assert_array_equal(got, expected)
