import io
import json

import pytest
from django.core.management import CommandError, call_command

from annotation.formats import read_file, write_file
from inference import bundle

pytestmark = pytest.mark.slow

HPARAMS = '{"char_dim": 16, "bigram_dim": 8, "hidden": 16}'


@pytest.fixture
def files(tmp_path, datasets_dir):
    examples = read_file(datasets_dir / "resume" / "train.char.bmes", strict=False)
    write_file(tmp_path / "train.jsonl", examples[:120], "jsonl")
    write_file(tmp_path / "dev.conll", examples[120:160], "conll", scheme="bio")
    return tmp_path


def test_train_command_prints_epochs_and_writes_a_bundle(files):
    out = io.StringIO()
    call_command(
        "train",
        "--train", str(files / "train.jsonl"),
        "--dev", str(files / "dev.conll"),
        "--test", str(files / "dev.conll"),
        "--out", str(files / "bundle"),
        "--epochs", "2",
        "--threads", "1",
        "--hparams", HPARAMS,
        "--quiet",
        stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "epoch   1" in text and "epoch   2" in text
    assert "test: P" in text and "INT8 F1" in text
    bundle.verify(files / "bundle")
    metrics = json.loads((files / "bundle" / "metrics.json").read_text())
    assert metrics["split"] == "test" and set(metrics["splits"]) == {"dev", "test"}


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--out", "bundle"], "not empty"),
        (["--hparams", "{bad"], "hparams"),
        (["--epochs", "0"], "--epochs must be at least 1"),
        (["--patience", "-1"], "--patience must be 0"),
        (["--hparams", "[1, 2]"], "must be a JSON object"),
        (["--hparams", '{"hiden": 64}'], "hiden unknown to bilstm_crf; known: bigram_dim"),
        (["--hparams", '{"lm_weight": 0.1, "layers": 2}'], "needs a one-layer BiLSTM"),
        (["--arch", "hf_crf"], "needs --init-from"),
        (["--init-from", "nowhere"], "no such folder"),
        (["--init-from", "bundle"], "neither a nerloop bundle nor a Hugging Face checkpoint"),
        (["--out", "train.jsonl"], "is a file"),
        (["--out", "bundle", "--overwrite"], "holds more than a model bundle"),
    ],
)
def test_train_command_refuses_bad_input(files, extra, problem):
    with pytest.raises(CommandError, match="no such file"):
        call_command("train", "--train", str(files / "nope.json"), "--dev", "x", "--out", "y")
    (files / "bundle").mkdir()
    (files / "bundle" / "keep.txt").write_text("x")
    flags = [item for item in extra if item == "--overwrite"]
    pairs = [item for item in extra if item != "--overwrite"]
    args = {
        "--out": "other",
        "--hparams": HPARAMS,
        **dict(zip(pairs[::2], pairs[1::2], strict=True)),
    }
    for path_option in ("--out", "--init-from"):
        if path_option in args:
            args[path_option] = str(files / args[path_option])
    with pytest.raises(CommandError, match=problem):
        call_command(
            "train",
            "--train", str(files / "train.jsonl"),
            "--dev", str(files / "dev.conll"),
            *[item for pair in args.items() for item in pair],
            *flags,
        )  # fmt: skip
    assert not (files / "other").exists()
    assert (files / "bundle" / "keep.txt").exists()  # --overwrite never deletes other files
    assert (files / "train.jsonl").exists()


def test_train_command_hints_at_repair_for_conll_tags_only(files):
    (files / "bad.conll").write_text("张\tI-NAME\n三\tE-NAME\n", encoding="utf-8")
    (files / "bad.jsonl").write_text(
        '{"text": "abc", "entities": [{"start": 0, "end": 9, "label": "X"}]}\n'
    )
    (files / "prose.conll").write_text("this is prose, not tags\n", encoding="utf-8")
    for name, hinted in (("bad.conll", True), ("bad.jsonl", False), ("prose.conll", False)):
        with pytest.raises(CommandError) as error:
            call_command(
                "train", "--train", str(files / name), "--dev", str(files / "dev.conll"),
                "--out", str(files / "never"),
            )  # fmt: skip
        assert ("--repair" in str(error.value)) == hinted, str(error.value)
        assert f"{name} line 1" in str(error.value)


def test_train_command_refuses_training_data_without_entities(files):
    (files / "plain.jsonl").write_text('{"text": "今天天气很好。"}\n' * 3, encoding="utf-8")
    with pytest.raises(CommandError, match="no entities in 3 sentences"):
        call_command(
            "train", "--train", str(files / "plain.jsonl"), "--dev", str(files / "dev.conll"),
            "--out", str(files / "other"),
        )  # fmt: skip
    assert not (files / "other").exists()


def test_train_command_help_shows_every_default(capsys):
    from learner.management.commands.train import Command

    text = Command().create_parser("manage.py", "train").format_help()
    for option, default in [("--epochs", "30"), ("--patience", "5"), ("--batch-size", "32")]:
        block = text[text.index(f"\n  {option} ") :].split("\n  --", 2)[1]
        assert f"default: {default}" in " ".join(block.split()), block
    assert "default: None" not in text


def test_train_refuses_a_dev_file_of_other_entity_types_and_warns_of_shared_sentences(tmp_path):
    """Label names that differ between files (PER here, PERSON there) made a model scored
    F1 0 with no word said; sentences shared with the training file flatter the score."""

    train = tmp_path / "train.bioes"
    train.write_text("张 B-PER\n三 E-PER\n来 O\n\n李 B-PER\n四 E-PER\n走 O\n", encoding="utf-8")
    other = tmp_path / "dev.jsonl"
    other.write_text(
        '{"text": "王五来了", "entities": [{"start": 0, "end": 2, "label": "PERSON"}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="entity types PERSON are not in the training file"):
        call_command("train", "--train", str(train), "--dev", str(other),
                     "--out", str(tmp_path / "out"), "--quiet")  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_train_warns_of_dev_sentences_that_are_also_training_sentences(tmp_path):
    train = tmp_path / "train.bioes"
    train.write_text("张 B-PER\n三 E-PER\n来 O\n\n李 B-PER\n四 E-PER\n走 O\n", encoding="utf-8")
    dev = tmp_path / "dev.bioes"
    dev.write_text("张 B-PER\n三 E-PER\n来 O\n\n王 B-PER\n五 E-PER\n", encoding="utf-8")
    out = io.StringIO()
    with pytest.raises(CommandError, match="--epochs must be at least 1"):  # stops before training
        call_command("train", "--train", str(train), "--dev", str(dev), "--epochs", "0",
                     "--out", str(tmp_path / "out"), stdout=out)  # fmt: skip
    assert "1 of the 2 dev sentences are also in the training file" in out.getvalue()
