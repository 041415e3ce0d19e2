"""The ``nerloop`` console script runs the offline tools with no SECRET_KEY configured."""

import os
import subprocess
import sys

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
