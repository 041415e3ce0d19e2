"""The ``nerloop`` console script runs the offline tools with no SECRET_KEY configured."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "-m", "nerloop.cli", *args], capture_output=True, text=True, env=env
    )


@pytest.mark.parametrize("command", ["train", "simulate_al"])
def test_cli_runs_the_offline_tools_without_a_secret_key(command):
    done = run(command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: nerloop {command}" in done.stdout
    assert "(default:" in done.stdout  # the defaults are shown


def test_cli_offers_only_the_offline_tools():
    done = run("runserver")
    assert done.returncode == 2
    assert "usage: nerloop {train, simulate_al}" in done.stdout


@pytest.mark.slow
def test_train_prints_its_progress_without_exporter_or_quantizer_noise(tmp_path):
    corpus = (Path(__file__).parents[1] / "annotation/demo/corpus.jsonl").read_text("utf-8")
    lines = corpus.splitlines()
    (tmp_path / "train.jsonl").write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    (tmp_path / "dev.jsonl").write_text("\n".join(lines[40:60]) + "\n", encoding="utf-8")
    done = run(
        "train",
        "--train", str(tmp_path / "train.jsonl"),
        "--dev", str(tmp_path / "dev.jsonl"),
        "--out", str(tmp_path / "bundle"),
        "--epochs", "1",
        "--quiet",
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "bundle written to" in output
    assert "PackPadded" not in output and "pre-processing" not in output, output
