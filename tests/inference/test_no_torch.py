"""The web process and every serving module start without torch (a fresh interpreter proves
it: the test process itself may have imported torch for other tests)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, pkgutil, sys
import nerloop.wsgi  # django.setup(): every installed app's models, admin and signals
import inference
for module in pkgutil.iter_modules(inference.__path__):
    importlib.import_module("inference." + module.name)
from django.urls import resolve
import nerloop.urls
match = resolve("/api/v1/predict")
assert match.func.view_class.__module__ == "inference.api", match
heavy = sorted(
    name for name in sys.modules
    if name.split(".")[0] in {"torch", "transformers", "onnxscript"}
    or name in {"learner.export", "learner.training", "learner.nets", "learner.crf"}
)
print("HEAVY:", heavy)
print("INFERENCE:", sorted(n for n in sys.modules if n.startswith("inference.")))
"""


def test_no_torch_in_web_process_or_inference_modules():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "nerloop.settings", "SECRET_KEY": "x"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY: []" in done.stdout, done.stdout
    for module in ("api", "bundle", "decoding", "engine", "features", "registry", "windows"):
        assert f"'inference.{module}'" in done.stdout
