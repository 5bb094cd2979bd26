"""The registries' catalog (`snnpipe.pipeline.catalog`) and the CLI that answers from it before
torch is imported: --help, --version, models and bad input."""

import json
import os
import shutil
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
    monkeypatch.setattr(cat, "fingerprint", lambda files: "0" * 64)
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


def _stored_with(tmp_path, monkeypatch, change):
    """The committed catalog, its stamp kept, changed by ``change``, as the file `catalog()` reads."""
    data = json.loads(cat.CATALOG_FILE.read_text())
    change(data)
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(data))
    monkeypatch.setattr(cat, "CATALOG_FILE", path)
    return path


def test_no_code_in_the_catalog_runs(tmp_path, monkeypatch):
    ran = tmp_path / "ran"

    def plant(data):
        data["models"]["mlp"]["arguments"]["hidden"] = f"__import__('pathlib').Path({str(ran)!r}).touch() or int"
    _stored_with(tmp_path, monkeypatch, plant)
    assert cat._read_stored() is None
    assert not ran.exists()


@pytest.mark.parametrize("change", [
    lambda data: data["models"]["mlp"].pop("arguments"),
    lambda data: data["datasets"]["digits"].update(input_shape="1x8x8"),
    lambda data: data["stages"]["bptt"].update(needs_teacher="no"),
    lambda data: data["exporters"]["loihi"]["options"][0].update(annotation="typing.Annotated[int,"),
    lambda data: data.update(encodings=None),
    lambda data: data.update(datasets=[]),
])
def test_a_parseable_but_wrong_catalog_gives_way_to_the_registries(tmp_path, monkeypatch, change):
    _stored_with(tmp_path, monkeypatch, change)
    assert cat._read_stored() is None


@pytest.fixture
def package_copy(tmp_path):
    """This snnpipe's sources in tmp_path/snnpipe, to edit without touching the checkout."""
    shutil.copytree(cat._ROOT, tmp_path / "snnpipe", ignore=shutil.ignore_patterns(
        ".git", "tests", "benchmarks", "reports", "*.egg-info", "__pycache__"))
    return tmp_path / "snnpipe"


def _in_copy(package, code):
    env = {**os.environ, "PYTHONPATH": str(package.parent)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=package.parent, env=env,
                          timeout=300)


def test_a_constant_the_catalog_holds_makes_it_stale_when_edited(package_copy):
    """MAX_INPUT_BITS lives in hw_targets/loihi/graph.py, not in a registry's file: lowered there, the
    CLI's check of --input-bits follows the new bound, not the catalog's old one."""
    graph = package_copy / "hw_targets" / "loihi" / "graph.py"
    assert "MAX_INPUT_BITS = 24\n" in graph.read_text()
    graph.write_text(graph.read_text().replace("MAX_INPUT_BITS = 24\n", "MAX_INPUT_BITS = 16\n"))
    done = _in_copy(package_copy, "import snnpipe, typing\n"
                                  "from snnpipe.pipeline.catalog import catalog\n"
                                  "options = catalog().exporter('loihi').options\n"
                                  "print(snnpipe.__file__, typing.get_type_hints(options, include_extras=True)['input_bits'])")
    assert done.returncode == 0, done.stderr
    assert str(package_copy) in done.stdout and "high=16" in done.stdout


def test_the_cli_answers_from_the_registries_when_the_catalog_is_wrong(package_copy):
    path = package_copy / "pipeline" / "catalog.json"
    data = json.loads(path.read_text())
    del data["models"]["mlp"]["arguments"]
    path.write_text(json.dumps(data))
    done = _in_copy(package_copy, _PROBE.replace("sys.argv[1:]", "['models']"))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "mlp" in done.stdout and "TORCH=True" in done.stderr
