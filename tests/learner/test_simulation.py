"""The active-learning simulation: its bookkeeping (fast) and the command on real data (slow)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation.formats import write_file
from annotation.spans import Example
from learner import simulation
from learner.incremental import oversample, replay_mix, stopping_split

from .loop_fixtures import resume_examples


def rows(strategy, repeat, points):
    return [
        {
            "corpus": "c",
            "strategy": strategy,
            "repeat": repeat,
            "round": i,
            "char_share": share,
            "sentence_share": share,
            "f1": f1,
            "train_seconds": 1.0,
        }
        for i, (share, f1) in enumerate(points)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500", (500.0, False)), ("2.5%", (0.025, True)), (" 10% ", (0.10, True))],
)
def test_simulation_parse_amount(text, expected):
    assert simulation.parse_amount(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "0", "-3", "150%"])
def test_simulation_parse_amount_refuses(text):
    with pytest.raises(ValueError):
        simulation.parse_amount(text)


def test_simulation_resolve_amount_in_characters_and_sentences():
    lengths = np.array([10, 20, 30, 40])
    assert simulation.resolve_amount("10%", "characters", lengths) == 10
    assert simulation.resolve_amount("50%", "sentences", lengths) == 2
    assert simulation.resolve_amount("7", "characters", lengths) == 7


def test_simulation_options_refuse_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategies"):
        simulation.SimulationOptions(strategies=["entropy", "qbc"])


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [("repeats", 0, "at least 1"), ("rounds", -1, "negative"), ("epochs", 0, "at least 1")],
)
def test_simulation_options_refuse_counts_out_of_range(field, value, problem):
    with pytest.raises(ValueError, match=f"{field} must .*{problem}"):
        simulation.SimulationOptions(**{field: value})


def test_simulation_summary_interpolates_at_ten_percent_and_finds_95():
    results = {
        "corpora": {"c": {"full": {"f1": 0.80}}},
        "rows": rows("random", 0, [(0.02, 0.30), (0.06, 0.50), (0.14, 0.70)])
        + rows("random", 1, [(0.02, 0.32), (0.06, 0.52), (0.14, 0.72)])
        + rows("entropy_kmeans", 0, [(0.02, 0.30), (0.06, 0.60), (0.14, 0.78), (0.30, 0.79)]),
    }
    summary = {s["strategy"]: s for s in simulation.summarise(results)}
    # random at 10%: halfway between 0.50/0.70 and 0.52/0.72 -> 0.60 and 0.62 -> mean 0.61
    assert summary["random"]["f1_at_10pct"] == pytest.approx(0.61)
    assert summary["random"]["repeats"] == 2
    assert summary["random"]["rounds"][1]["f1_std"] == pytest.approx(0.01)
    assert summary["entropy_kmeans"]["f1_at_10pct"] == pytest.approx(0.69)
    assert summary["entropy_kmeans"]["gain_over_random_at_10pct"] == pytest.approx(0.08)
    # 95% of 0.80 = 0.76: reached between 6% (0.60) and 14% (0.78)
    assert summary["entropy_kmeans"]["share_for_95pct"] == pytest.approx(0.06 + 0.08 * 16 / 18)
    assert summary["random"]["share_for_95pct"] is None
    table = simulation.format_table({**results, "summary": list(summary.values())})
    assert "entropy_kmeans" in table and "+8.00" in table


def test_simulation_replay_mix_caps_the_new_share():
    examples = list(range(100))
    rng = np.random.default_rng(0)
    mixed = replay_mix(examples, [0, 1, 2], list(range(3, 100)), 0.15, rng)
    assert mixed[:3] == [0, 1, 2]
    assert len(mixed) == 3 + 17  # ceil(3 * 0.85 / 0.15)
    assert set(mixed[3:]) <= set(range(3, 100))
    everything = replay_mix(examples, [0], [1, 2], 0.15, rng)
    assert sorted(everything) == [0, 1, 2]


def test_simulation_oversample_repeats_small_sets_only():
    assert oversample([1, 2, 3], minimum=7) == [1, 2, 3] * 3
    assert oversample(list(range(10)), minimum=7) == list(range(10))
    assert oversample([], minimum=7) == []


def test_retraining_stopping_split_holds_out_a_tenth_of_the_train_examples():
    def examples(count, first=0):
        return [Example(f"句子{number}") for number in range(first, first + count)]

    fit, stop = stopping_split(examples(3000), seed=1)
    assert 240 <= len(stop) <= 360 and len(fit) + len(stop) == 3000
    assert {ex.text for ex in fit} | {ex.text for ex in stop} == {ex.text for ex in examples(3000)}
    assert stopping_split(examples(3000), seed=1) == (fit, stop)  # reproducible for a seed
    assert stopping_split(examples(3000), seed=2)[1] != stop
    assert len(stopping_split(examples(20_000), seed=1)[1]) == 500
    assert len(stopping_split(examples(100), seed=1)[1]) >= 20
    assert stopping_split(examples(99), seed=1) == (examples(99), [])


def test_retraining_stopping_split_keeps_a_text_on_its_side_as_the_set_grows():
    """A warm-started retrain must stop early on texts its parent never trained on."""
    before = [Example(f"第{number}句") for number in range(400)]
    after = before[::-1] + [Example(f"新的第{number}句") for number in range(2000)]
    fit_before, stop_before = stopping_split(before, seed=7)
    fit_after, stop_after = stopping_split(after, seed=7)
    trained = {ex.text for ex in fit_before}
    assert not trained & {ex.text for ex in stop_after}
    assert {ex.text for ex in stop_before} <= {ex.text for ex in stop_after}


def test_simulate_al_command_needs_data():
    with pytest.raises(CommandError, match="corpus"):
        call_command("simulate_al")
    with pytest.raises(CommandError, match="--eval"):
        call_command("simulate_al", "--train", "a.json")
    with pytest.raises(CommandError, match="repeats must be at least 1"):
        call_command("simulate_al", "--corpus", "resume", "--repeats", "0")
    with pytest.raises(CommandError, match="--jobs must be at least 1"):
        call_command("simulate_al", "--corpus", "resume", "--jobs", "0")


def test_simulate_al_command_refuses_two_corpora_of_one_name_and_ill_formed_tags(tmp_path):
    """Results are keyed by corpus name: two pools called "train" made one zig-zag curve of
    both. Ill-formed tags are refused as nerloop train refuses them, unless --repair."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.jsonl").write_text('{"text": "张三", "entities": []}\n')
        (tmp_path / folder / "eval.jsonl").write_text('{"text": "李四", "entities": []}\n')
    pair = [
        *("--train", str(tmp_path / "a/train.jsonl"), "--eval", str(tmp_path / "a/eval.jsonl")),
        *("--train", str(tmp_path / "b/train.jsonl"), "--eval", str(tmp_path / "b/eval.jsonl")),
    ]
    with pytest.raises(CommandError, match="both be called 'train'"):
        call_command("simulate_al", *pair)
    orphan = tmp_path / "orphan.bioes"
    orphan.write_text("张 B-PER\n三 E-PER\n\n去 O\n北 I-LOC\n京 E-LOC\n")
    files = ["--train", str(orphan), "--eval", str(tmp_path / "a/eval.jsonl")]
    with pytest.raises(CommandError, match="line 5.*continues no open entity.*--repair"):
        call_command("simulate_al", *files)
    # repaired as asked, it runs
    out = tmp_path / "out"
    call_command("simulate_al", *files, "--repair", "--stop-sentences", "0", "--rounds", "0",
                 "--first-epochs", "1", "--no-full", "--strategies", "random",
                 "--out", str(out))  # fmt: skip
    assert (out / "simulation.csv").is_file()


@pytest.mark.parametrize(
    ("hparams", "problem"),
    [
        ("{bad", "--hparams is not JSON"),
        ("[1]", "must be a JSON object"),
        ('{"hiden": 64}', "hiden unknown to bilstm_crf"),
        ('{"lm_weight": 0.1, "layers": 2}', "needs a one-layer BiLSTM"),
    ],
)
def test_simulate_al_command_refuses_bad_hparams_before_reading_corpora(tmp_path, hparams, problem):
    missing = ["--train", str(tmp_path / "no.jsonl"), "--eval", str(tmp_path / "no.jsonl")]
    with pytest.raises(CommandError, match=problem):
        call_command("simulate_al", *missing, "--hparams", hparams)


def test_simulate_al_command_trains_with_the_hparams_given(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "张三在北京", "entities": []}\n')
    (tmp_path / "eval.jsonl").write_text('{"text": "李四", "entities": []}\n')
    out = tmp_path / "out"
    call_command("simulate_al", "--train", str(tmp_path / "train.jsonl"),
                 "--eval", str(tmp_path / "eval.jsonl"), "--stop-sentences", "0",
                 "--rounds", "0", "--first-epochs", "1", "--no-full", "--strategies", "random",
                 "--hparams", '{"hidden": 8, "lm_weight": 0.1}', "--out", str(out))  # fmt: skip
    options = json.loads((out / "simulation.json").read_text())["options"]
    assert options["hparams"] == {"hidden": 8, "lm_weight": 0.1}


@pytest.mark.slow
def test_simulate_al_command_writes_table_csv_json_and_plot(datasets_dir, tmp_path, capsys):
    pool, held_out = tmp_path / "pool.jsonl", tmp_path / "eval.jsonl"
    write_file(pool, resume_examples(datasets_dir, limit=90), "jsonl")
    write_file(held_out, resume_examples(datasets_dir, "dev.char.bmes", limit=30), "jsonl")
    out = tmp_path / "out"
    call_command(
        "simulate_al",
        "--train", str(pool), "--eval", str(held_out),
        "--strategies", "random,entropy_kmeans",
        "--unit", "sentences", "--seed-size", "20", "--batch-size", "20", "--rounds", "1",
        "--first-epochs", "2", "--epochs", "1", "--full-epochs", "1",
        "--min-epoch-sentences", "0", "--out", str(out),
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "targets" in printed and "entropy_kmeans" in printed
    with (out / "simulation.csv").open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["strategy"], r["round"], r["sentences"]) for r in table] == [
        ("random", "0", "20"),
        ("random", "1", "40"),
        ("entropy_kmeans", "0", "20"),
        ("entropy_kmeans", "1", "40"),
    ]
    assert all(0 <= float(r["f1"]) <= 1 for r in table)
    assert all(int(r["characters"]) > int(r["sentences"]) for r in table)
    results = json.loads((out / "simulation.json").read_text(encoding="utf-8"))
    assert results["corpora"]["pool"]["full"]["f1"] >= 0
    assert {s["strategy"] for s in results["summary"]} == {"random", "entropy_kmeans"}
    assert (out / "simulation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "72 sentences" in printed and "18 held out for early stopping" in printed


def test_simulation_never_stops_early_on_the_evaluation_set(datasets_dir, tmp_path):
    """Early stopping scores sentences held out of the pool, never the evaluation set the
    reported F1 comes from (the same ones every time)."""
    pool, held_out = tmp_path / "pool.jsonl", tmp_path / "eval.jsonl"
    write_file(pool, resume_examples(datasets_dir, limit=200), "jsonl")
    write_file(held_out, resume_examples(datasets_dir, "dev.char.bmes", limit=30), "jsonl")
    corpus = simulation.load_corpus("c", pool, held_out, stop_sentences=25)
    again = simulation.load_corpus("c", pool, held_out, stop_sentences=25)
    assert len(corpus.stop) == 25 and len(corpus.pool) == 175
    assert [ex.text for ex in corpus.stop] == [ex.text for ex in again.stop]
    stop = simulation.stopping_set(corpus)
    assert stop == corpus.stop
    assert all(ex not in corpus.eval for ex in stop)  # taken out of the pool, not the eval set
