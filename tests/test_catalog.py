"""The registries' catalog (`snnpipe.pipeline.catalog`) and the CLI that answers from it before
torch is imported: --help, --version, models and bad input."""

import json
import subprocess
import sys
import dataclasses
import typing

import pytest

from snnpipe.pipeline import catalog as cat

# Run the CLI in a fresh interpreter and report, at exit, whether torch was imported.
_PROBE = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("TORCH=%s\\n" % ("torch" in sys.modules)))
sys.argv = ["snnpipe"] + sys.argv[1:]
from snnpipe.pipeline.cli import main
main()
"""


def _cli(args, cwd):
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_the_committed_catalog_is_the_registries():
    """catalog.json is what the registries hold now (else: python -m snnpipe.pipeline.catalog)."""
    stored = json.loads(cat.CATALOG_FILE.read_text())
    assert stored == json.loads(json.dumps(cat.build())), "catalog.json is stale: run python -m snnpipe.pipeline.catalog"


def _fields(cls):
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, hints[f.name], f.default, f.metadata.get("help")) for f in dataclasses.fields(cls) if f.init]


def test_the_stored_catalog_reads_back_as_the_registries():
    """Every annotation, default and help the CLI checks with is the registry's own."""
    stored, live = cat._read_stored(), cat._live(count_parameters=True)
    assert stored is not None
    assert stored.datasets == live.datasets
    assert stored.encodings == live.encodings
    assert stored.models == live.models
    assert stored.stages.keys() == live.stages.keys()
    for name, stage in live.stages.items():
        assert stored.stages[name].needs_teacher == stage.needs_teacher
        assert _fields(stored.stages[name].args) == _fields(stage.args), name
    assert stored.exporters.keys() == live.exporters.keys()
    for name, entry in live.exporters.items():
        assert stored.exporters[name].suffix == entry.suffix
        assert _fields(stored.exporters[name].options) == _fields(entry.options), name


def test_a_stale_catalog_is_not_read(monkeypatch):
    """An edited registry source: the catalog comes from the registries, never from the old file."""
    monkeypatch.setattr(cat, "fingerprint", lambda: "0" * 64)
    assert cat._read_stored() is None
    assert cat.catalog().source == "registries"


def test_an_annotation_that_cannot_be_spelled_is_refused():
    with pytest.raises(ValueError, match="cannot spell"):
        cat._spell(dict[str, int], "here")


@pytest.mark.parametrize("args,out", [
    (["--help"], "Usage: snnpipe"),
    (["--version"], "snnpipe, version"),
    (["models"], "resnet19"),
    (["train", "--help"], "--stage [ann|ann-guided|bptt"),
    (["export", "--help"], "--max-drop"),
    (["run", "--help"], "--threads"),
    (["profile", "--help"], "--target [cmos45nm|loihi]"),
])
def test_help_version_and_models_answer_without_torch(tmp_path, args, out):
    code, stdout, stderr = _cli(args, tmp_path)
    assert code == 0, stderr
    assert out in stdout
    assert "TORCH=False" in stderr


@pytest.mark.parametrize("args,message", [
    (["train", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["train", "--model-arg", "hidden=[0]"], "--model-arg of 'mlp': hidden: [0] is not a list of integers, each >= 1"),
    (["train", "--stage", "esd", "--stage-arg", "eta=-1"], "stage 'esd': --stage-arg eta: -1 is not a number >= 0"),
    (["train", "--stage", "kd-activity"], "stage 'kd-activity' needs a teacher"),
    (["train", "--surrogate", "step"], "unknown surrogate 'step'"),
    (["train", "--device", "tpu"], "unknown device 'tpu'"),
    (["train", "--threads", "0"], "--threads 0 is out of range"),
    (["export", "x.pt", "--target", "loihi", "--max-drop", "-1"], "--target loihi: --max-drop: -1.0 is not a number >= 0"),
    (["export", "x.pt", "--target", "onnx"], "checkpoint x.pt does not exist"),
    (["profile", "x.pt"], "checkpoint x.pt does not exist"),
    (["run", "recipe.yaml"], "step 1 (train): stage 'esd': --stage-arg kd_weight: 'high' is not a number >= 0"),
])
def test_bad_input_answers_without_torch(tmp_path, args, message):
    (tmp_path / "recipe.yaml").write_text("name: r\nsteps:\n  - train: {stage: esd, stage_args: {kd_weight: high}}\n")
    code, stdout, stderr = _cli(args, tmp_path)
    assert code == 2, stderr
    assert message in stderr and "Traceback" not in stderr
    assert "TORCH=False" in stderr
