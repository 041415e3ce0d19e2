"""Bundle manifest: written over every file, and a bundle that does not match is refused."""

import json

import numpy as np
import pytest

from inference import bundle
from inference.bundle import BundleError, BundleInfo


def test_bundle_manifest_lists_every_file_but_itself(tiny_bundle):
    manifest = json.loads((tiny_bundle / bundle.MANIFEST).read_text())
    on_disk = sorted(p.name for p in tiny_bundle.iterdir() if p.name != bundle.MANIFEST)
    assert sorted(manifest["files"]) == on_disk
    for name, digest in manifest["files"].items():
        assert digest == bundle.sha256_file(tiny_bundle / name)
    assert bundle.verify(tiny_bundle) == manifest["files"]


@pytest.mark.parametrize("name", [bundle.MODEL, bundle.LABELS, bundle.CRF, bundle.VOCAB])
def test_bundle_tampered_file_is_refused_by_name(tiny_bundle, name):
    path = tiny_bundle / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=name) as info:
        bundle.verify(tiny_bundle)
    assert info.value.code == "E202"
    assert info.value.path == str(path)


def test_bundle_missing_file_is_refused_by_name(tiny_bundle):
    (tiny_bundle / bundle.METRICS).unlink()
    with pytest.raises(BundleError, match=r"metrics\.json is listed .* but missing"):
        bundle.verify(tiny_bundle)


def test_bundle_unlisted_file_is_refused_by_name(tiny_bundle):
    (tiny_bundle / "extra.onnx").write_bytes(b"not listed")
    with pytest.raises(BundleError, match=r"extra\.onnx .* not listed"):
        bundle.verify(tiny_bundle)


def test_bundle_without_manifest_is_refused(tiny_bundle):
    (tiny_bundle / bundle.MANIFEST).unlink()
    with pytest.raises(BundleError, match="manifest.json is missing"):
        bundle.verify(tiny_bundle)


def test_bundle_manifest_must_list_required_files(tiny_bundle):
    manifest = json.loads((tiny_bundle / bundle.MANIFEST).read_text())
    del manifest["files"][bundle.CRF]
    (tiny_bundle / bundle.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"crf\.json is not listed"):
        bundle.verify(tiny_bundle)


@pytest.mark.parametrize("name", ["../elsewhere/model.onnx", "/etc/passwd"])
def test_bundle_manifest_may_not_name_files_outside_the_bundle(tiny_bundle, name):
    manifest = json.loads((tiny_bundle / bundle.MANIFEST).read_text())
    manifest["files"][name] = "0" * 64
    (tiny_bundle / bundle.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="outside the bundle"):
        bundle.verify(tiny_bundle)


def test_bundle_missing_folder_is_refused(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        bundle.verify(tmp_path / "nowhere")


def test_bundle_write_manifest_needs_required_files(tmp_path):
    (tmp_path / bundle.MODEL).write_bytes(b"graph")
    with pytest.raises(BundleError, match="labels.json"):
        bundle.write_manifest(tmp_path)
    assert not (tmp_path / bundle.MANIFEST).exists()


def test_bundle_rewriting_manifest_after_a_change_verifies_again(tiny_bundle):
    (tiny_bundle / bundle.METRICS).write_text(json.dumps({"f1": 0.9}))
    with pytest.raises(BundleError):
        bundle.verify(tiny_bundle)
    bundle.write_manifest(tiny_bundle)
    bundle.verify(tiny_bundle)
    assert not list(tiny_bundle.glob("*.tmp"))


def test_bundle_info_reads_labels_crf_config_metrics(tiny_bundle):
    info = BundleInfo.read(tiny_bundle)
    assert info.labels[0] == "O" and len(info.labels) == 9
    assert info.transitions.shape == (9, 9) and info.transitions.dtype == np.float32
    assert info.start.shape == info.end.shape == (9,)
    assert info.version == "tiny-1" and info.scheme == "bioes"
    assert info.max_len == 64 and info.window_overlap == 8
    assert info.entity_types == ["LOC", "PER"]
    assert info.metrics == {"f1": 0.5}


def test_bundle_info_rejects_crf_of_wrong_size(tiny_bundle):
    (tiny_bundle / bundle.CRF).write_text(
        json.dumps({"transitions": [[0.0]], "start": [0], "end": [0]})
    )
    with pytest.raises(BundleError, match=r"crf\.json .* shapes"):
        BundleInfo.read(tiny_bundle)


def test_bundle_read_json_names_malformed_file(tiny_bundle):
    (tiny_bundle / bundle.CONFIG).write_text("{not json")
    with pytest.raises(BundleError, match=r"config\.json .* not valid JSON"):
        bundle.read_json(tiny_bundle, bundle.CONFIG)
