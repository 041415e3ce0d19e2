"""The model bundle on disk: file names, the sha256 manifest, and reading the small JSON files.

A bundle is the only thing that crosses from ``learner/`` (torch) to ``inference/`` (no torch),
so both sides use these helpers: ``learner/export.py`` writes files then calls
``write_manifest``; the engine calls ``verify`` before it opens anything. Django-free and
numpy-only so export scripts and benchmarks can use it without settings. docs/bundle.md is
the contract.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotation.tags import SCHEMES

MODEL = "model.onnx"
MODEL_INT8 = "model.int8.onnx"
VOCAB = "vocab.json"
LEXICON = "lexicon.txt"
LABELS = "labels.json"
CRF = "crf.json"
CONFIG = "config.json"
METRICS = "metrics.json"
MANIFEST = "manifest.json"

# Files a bundle cannot serve without. The INT8 twin, the lexicon and metrics may be absent
# (an op that does not quantize, a config without lexicon features, a bundle not yet
# evaluated); whatever is present must still be listed in the manifest with the right sum.
REQUIRED = (MODEL, LABELS, CRF, CONFIG)

_CHUNK = 1 << 20


class BundleError(Exception):
    """A bundle that must not be served: missing, tampered with, or malformed (code E202)."""

    code = "E202"

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        super().__init__(message)
        self.path = str(path) if path is not None else None


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _bundle_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` except the manifest, as sorted POSIX paths."""
    names = []
    for path in folder.rglob("*"):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            if name != MANIFEST:
                names.append(name)
    return sorted(names)


def write_manifest(folder: str | os.PathLike) -> dict[str, str]:
    """Hash every file of the bundle and write ``manifest.json``; returns name -> sha256.

    Call it last, after every other file is in place: anything written afterwards makes the
    bundle fail ``verify``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist", root)
    sums = {name: sha256_file(root / name) for name in _bundle_files(root)}
    missing = [name for name in REQUIRED if name not in sums]
    if missing:
        raise BundleError(f"bundle {root} lacks required file(s): {', '.join(missing)}", root)
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps({"files": sums}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    # A leftover temporary file would be an unlisted file; the rename leaves none behind.
    os.replace(tmp, root / MANIFEST)
    return sums


def read_json(folder: str | os.PathLike, name: str) -> Any:
    """Parse one JSON file of the bundle; a missing or malformed file is a BundleError."""
    path = Path(folder) / name
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise BundleError(f"{name} is missing from bundle {folder}", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{name} in bundle {folder} is not valid JSON: {exc}", path) from None


def verify(folder: str | os.PathLike) -> dict[str, str]:
    """Check every file against ``manifest.json``; raise BundleError naming the first problem.

    Problems: no manifest, a required file not listed, a name outside the bundle, a listed
    file missing, a file whose sum differs, a file present but not listed. Returns the
    manifest's name -> sha256.
    """
    root = Path(folder)
    if not root.is_dir():
        raise BundleError(f"bundle folder {root} does not exist", root)
    manifest = read_json(root, MANIFEST)
    sums = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
        raise BundleError(f"{MANIFEST} in {root} has no 'files' mapping of sha256 sums", root)
    for name in REQUIRED:
        if name not in sums:
            raise BundleError(f"required file {name} is not listed in {MANIFEST} of {root}", root)
    for name in sorted(sums):
        path = root / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise BundleError(f"{MANIFEST} of {root} names {name!r}, outside the bundle", root)
        if not path.is_file():
            raise BundleError(f"{name} is listed in {MANIFEST} but missing from {root}", path)
        if sha256_file(path) != sums[name]:
            raise BundleError(
                f"{name} in {root} does not match its sha256 in {MANIFEST} (modified?)", path
            )
    extra = [name for name in _bundle_files(root) if name not in sums]
    if extra:
        raise BundleError(f"{extra[0]} in {root} is not listed in {MANIFEST}", root / extra[0])
    return sums


@dataclass
class BundleInfo:
    """The small files of a bundle, parsed and checked for consistency (not the graph)."""

    path: Path
    labels: list[str]
    transitions: np.ndarray  # float32 [L, L]; transitions[i, j] scores tag i followed by tag j
    start: np.ndarray  # float32 [L]
    end: np.ndarray  # float32 [L]
    config: dict
    metrics: dict = field(default_factory=dict)

    @property
    def version(self) -> str:
        return str(self.config.get("version") or self.path.name)

    @property
    def scheme(self) -> str:
        return str(self.config.get("scheme", "bioes"))

    @property
    def max_len(self) -> int:
        return int(self.config["max_len"])

    @property
    def window_overlap(self) -> int:
        return int(self.config.get("window_overlap", 0))

    @property
    def entity_types(self) -> list[str]:
        types = self.config.get("entity_types")
        if types:
            return list(types)
        return sorted({tag.split("-", 1)[1] for tag in self.labels if tag != "O"})

    @classmethod
    def read(cls, folder: str | os.PathLike) -> BundleInfo:
        root = Path(folder)
        labels = read_json(root, LABELS)
        if (
            not isinstance(labels, list)
            or not labels
            or not all(isinstance(t, str) for t in labels)
        ):
            raise BundleError(f"{LABELS} in {root} must be a non-empty list of tags", root / LABELS)
        size = len(labels)
        crf = read_json(root, CRF)
        try:
            transitions = np.asarray(crf["transitions"], dtype=np.float32)
            start = np.asarray(crf["start"], dtype=np.float32)
            end = np.asarray(crf["end"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{CRF} in {root} is malformed: {exc!r}", root / CRF) from None
        if transitions.shape != (size, size) or start.shape != (size,) or end.shape != (size,):
            raise BundleError(
                f"{CRF} in {root} has shapes {transitions.shape}, {start.shape}, {end.shape}; "
                f"{LABELS} has {size} tags",
                root / CRF,
            )
        config = read_json(root, CONFIG)
        max_len = config.get("max_len") if isinstance(config, dict) else None
        if not isinstance(max_len, int) or max_len < 1:
            raise BundleError(f"{CONFIG} in {root} must be an object with a positive max_len", root)
        if config.get("scheme", "bioes") not in SCHEMES:
            raise BundleError(f"{CONFIG} in {root}: unknown tag scheme {config['scheme']!r}", root)
        metrics = read_json(root, METRICS) if (root / METRICS).is_file() else {}
        return cls(root, labels, transitions, start, end, config, metrics)
