"""Files from elsewhere, crafted (issue 23, items 10-12): a netx, Loihi graph, NIR, recipe, config,
chip or target file handed to a user is read for what it holds and no more. Links and storage
outside the file, declared sizes, nested YAML aliases and out-of-range values each end in one
line and exit code 2, driving the real CLI; nothing reads another file, hangs or runs out of memory.

The probes that could blow up the machine on a broken build (billion laughs, a 10 MB name) run in
a subprocess under an address-space limit and a timeout.
"""

import resource
import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from click.testing import CliRunner

from snnpipe.files import TEMP_MARK
from snnpipe.hw_targets.loihi.graph import Connection, GraphNode, LoihiGraph
from snnpipe.hw_targets.loihi.graph_file import write_graph
from snnpipe.hw_targets.loihi.netx import write_netx
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiLayer, LoihiNetwork, readout_neuron
from snnpipe.pipeline.cli import cli

#: What a file from snnpipe's export says about its data (`pipeline.export.data_metadata`).
DATA = {"dataset": "digits", "encoding": "rate", "timesteps": 2, "data_seed": 0}
#: Address space a probe subprocess may take: torch's import fits, a billion laughs does not.
PROBE_BYTES = 2 << 30


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


def _profile(path, tmp_path, *extra: str):
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["profile", str(path), "--samples", "8", "--out", str(out), *extra])
    return result, out


def _netx(tmp_path, name: str = "net.net.h5", **attrs) -> Path:
    """A digits network of 64 inputs -> 4 neurons -> 10 readouts, written as snnpipe's export writes."""
    rng = np.random.default_rng(0)
    fc = LoihiLayer("fc", "dense", (64,), (4,), rng.integers(-100, 100, (4, 64)) * 2, None, CubaNeuron(4096, 0, 150))
    out = LoihiLayer("out", "dense", (4,), (10,), rng.integers(-100, 100, (10, 4)) * 2, None, readout_neuron())
    path = tmp_path / name
    write_netx(LoihiNetwork((64,), [fc, out]), path, {**DATA, **attrs})
    return path


def _conv_netx(tmp_path) -> Path:
    """digits 1x8x8 -> a 2-channel 3x3 conv (2x6x6) -> 10 readouts."""
    rng = np.random.default_rng(0)
    conv = LoihiLayer("conv", "conv", (1, 8, 8), (2, 6, 6), rng.integers(-100, 100, (2, 1, 3, 3)) * 2, None,
                      CubaNeuron(4096, 0, 150))
    out = LoihiLayer("out", "dense", (72,), (10,), rng.integers(-100, 100, (10, 72)) * 2, None, readout_neuron(),
                     flatten=True)
    path = tmp_path / "conv.net.h5"
    write_netx(LoihiNetwork((1, 8, 8), [conv, out]), path, DATA)
    return path


def _graph_file(tmp_path) -> Path:
    """The graded-input (direct-coded) form: 8-bit input x_q = round(x / 2^-5) into 4 neurons, 10 readouts."""
    rng = np.random.default_rng(0)
    fc = GraphNode("fc", (4,), CubaNeuron(4096, 0, 150), None,
                   [Connection("input", "fc", "dense", (64,), rng.integers(-100, 100, (4, 64)) * 2)])
    out = GraphNode("out", (10,), readout_neuron(), None,
                    [Connection("fc", "out", "dense", (4,), rng.integers(-100, 100, (10, 4)) * 2)])
    path = tmp_path / "graph.net.h5"
    write_graph(LoihiGraph((64,), [fc, out], input_bits=8, input_exp=-5), path, {**DATA, "encoding": "direct"})
    return path


def _replace(path, key: str, make) -> None:
    """Replace the dataset ``key`` of ``path`` by what ``make(handle, key, old value)`` puts there."""
    with h5py.File(path, "r+") as handle:
        old = handle[key][()]
        del handle[key]
        make(handle, key, old)


def test_the_hand_built_files_profile(tmp_path):
    # the fixtures themselves are good files: what the tests below change is what they refuse
    for path in (_netx(tmp_path), _conv_netx(tmp_path), _graph_file(tmp_path)):
        result, out = _profile(path, tmp_path / path.stem)
        assert result.exit_code == 0, result.output
        assert (out / "profile.json").exists()


# --- item 10: nothing outside the file is read -------------------------------------------------------------

def _external_link(tmp_path):
    def make(handle, key, old):
        with h5py.File(tmp_path / "elsewhere.h5", "w") as other:
            other.create_dataset("w", data=np.full_like(old, 2))
        handle[key] = h5py.ExternalLink(str(tmp_path / "elsewhere.h5"), "w")
    return make, ("another file", "elsewhere.h5")


def _external_storage(tmp_path):
    def make(handle, key, old):
        (tmp_path / "raw.bin").write_bytes(np.full(old.shape, 2, dtype=np.int16).tobytes())
        handle.create_dataset(key, shape=old.shape, dtype=np.int16, external=[(str(tmp_path / "raw.bin"), 0, old.nbytes)])
    return make, ("another file", "raw.bin", "external storage")


def _virtual(tmp_path):
    def make(handle, key, old):
        with h5py.File(tmp_path / "source.h5", "w") as other:
            other.create_dataset("w", data=np.full(old.shape, 2, dtype=np.int16))
        layout = h5py.VirtualLayout(shape=old.shape, dtype=np.int16)
        layout[...] = h5py.VirtualSource(str(tmp_path / "source.h5"), "w", shape=old.shape)
        handle.create_virtual_dataset(key, layout)
    return make, ("virtual dataset",)


@pytest.mark.parametrize("craft", [_external_link, _external_storage, _virtual])
@pytest.mark.parametrize("kind", ["netx", "graph"])
def test_a_weight_kept_in_another_file_is_refused(tmp_path, craft, kind):
    path, key = (_netx(tmp_path), "layer/2/weight") if kind == "netx" else (_graph_file(tmp_path),
                                                                           "node/0/connection/0/weight")
    make, words = craft(tmp_path)
    _replace(path, key, make)
    result, out = _profile(path, tmp_path)
    _one_line_error(result, path.name, key, *words)
    assert not out.exists()


def _hand_nir() -> nir.NIRGraph:
    """digits' 64 inputs -> Affine -> CubaLIF -> Affine -> 10 classes (tests/test_nir.py's hand graph, widened)."""
    one = np.ones(10)
    weight = np.arange(640, dtype=np.float32).reshape(10, 64) / 640
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([64])}),
            "fc": nir.Affine(weight=weight, bias=np.zeros(10, dtype=np.float32)),
            "lif": nir.CubaLIF(tau_syn=2e-4 * one, tau_mem=4e-4 * one, r=4 * one, v_leak=0 * one,
                               v_threshold=one, w_in=2 * one),
            "readout": nir.Affine(weight=np.eye(10, dtype=np.float32), bias=np.zeros(10, dtype=np.float32)),
            "output": nir.Output(output_type={"output": np.array([10])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "readout"), ("readout", "output")],
    )


@pytest.mark.parametrize("craft", [_external_link, _external_storage])
def test_a_nir_file_reaching_into_another_file_is_refused_before_nir_reads_it(tmp_path, craft):
    path = tmp_path / "hand.nir"
    nir.write(path, _hand_nir())
    out = tmp_path / "imported.pt"
    good = CliRunner().invoke(cli, ["import", "nir", str(path), "--out", str(out), "-T", "4"])
    assert good.exit_code == 0, good.output
    out.unlink()
    make, words = craft(tmp_path)
    with h5py.File(path, "r+") as handle:
        old = handle["node/nodes/fc/weight"][()]
        del handle["node/nodes/fc/weight"]
        make(handle, "node/nodes/fc/weight", old.astype(np.int16) if craft is _external_storage else old)
    result = CliRunner().invoke(cli, ["import", "nir", str(path), "--out", str(out), "-T", "4"])
    _one_line_error(result, "hand.nir", "node/nodes/fc/weight", *words)
    assert not out.exists()


# --- item 12: crafted values and sizes ---------------------------------------------------------------------

def test_a_declared_terabyte_weight_in_a_small_file_is_refused_before_reading(tmp_path):
    # (10^6, 10^6) int16 = 2 * 10^12 bytes, 1862.6 GiB, in chunks never written: the file stays small
    path = _netx(tmp_path)
    _replace(path, "layer/2/weight", lambda handle, key, old: handle.create_dataset(
        key, shape=(10**6, 10**6), dtype=np.int16, chunks=(1000, 1000)))
    assert path.stat().st_size < 100_000
    result, out = _profile(path, tmp_path)
    _one_line_error(result, path.name, "layer/2/weight", "1000000x1000000", "1.86e+03 GiB")
    assert not out.exists()


def _set_attr(name, value):
    def edit(handle):
        handle.attrs[name] = value
    return edit


def _set_dataset(key, value):
    def edit(handle):
        del handle[key]
        handle.create_dataset(key, data=value)
    return edit


CRAFTED_VALUES = {
    "timesteps NaN": ("netx", _set_attr("timesteps", np.nan), ("timesteps=nan", "root attribute")),
    "negative data seed": ("netx", _set_attr("data_seed", -5), ("data_seed=-5", "root attribute")),
    "input_exp 10^6": ("graph", _set_attr("input_exp", 10**6), ("input_exp=1000000", "[-64, 64]")),
    "groups 0": ("conv", _set_dataset("layer/1/groups", 0), ("groups=0", "conv")),
    "stride 0": ("conv", _set_dataset("layer/1/stride", np.array([0, 0])), ("stride=(0, 0)", "conv")),
    "float weights": ("netx", lambda h: _set_dataset("layer/1/weight", np.full((4, 64), 0.5))(h),
                      ("weight of fc holds 0.5", "integers")),
    "all-zero weights": ("netx", lambda h: _set_dataset("layer/1/weight", np.zeros((4, 64), dtype=np.int16))(h),
                         ("weight of fc is all zero",)),
    "float graph weights": ("graph", lambda h: _set_dataset("node/0/connection/0/weight", np.full((4, 64), 0.5))(h),
                            ("weight of fc holds 0.5", "integers")),
}


@pytest.mark.parametrize("case", list(CRAFTED_VALUES))
def test_out_of_range_values_in_a_loihi_file_are_one_line(tmp_path, case):
    kind, edit, words = CRAFTED_VALUES[case]
    path = {"netx": _netx, "graph": _graph_file, "conv": _conv_netx}[kind](tmp_path)
    with h5py.File(path, "r+") as handle:
        edit(handle)
    result, out = _profile(path, tmp_path)
    _one_line_error(result, path.name, *words)
    assert not out.exists()


# a conv whose geometry does not give its node's shape: on main the simulator failed on it (a tensor size
# mismatch) or tried to allocate terabytes (a padding of 10^6), each a traceback and exit 1

@pytest.fixture(scope="module")
def exported_resnet(tmp_path_factory):
    """A direct-coded ResNet on digits (1x8x8: stem 2x4x4, blocks of 2 and 4 channels, relays), exported
    by the CLI as a Loihi graph file, and its checkpoint."""
    import torch

    from snnpipe.models import create_model
    from snnpipe.models.neurons import NeuronParams
    from snnpipe.pipeline.checkpoint import Checkpoint
    from snnpipe.pipeline.data import DataSpec

    torch.manual_seed(0)
    args = {"channels": (2, 4), "blocks": 1, "hidden": 8}
    model = create_model("resnet", input_shape=(1, 8, 8), num_classes=10, **args)
    state = {k: v * 4 if k.endswith("weight") else v for k, v in model.state_dict().items()}
    checkpoint = tmp_path_factory.mktemp("resnet") / "checkpoint.pt"
    Checkpoint("resnet", args, True, NeuronParams(), 2, "direct", DataSpec("digits", (1, 8, 8), 10, (0.3,), (0.4,)),
               state, []).save(checkpoint)
    result = CliRunner().invoke(cli, ["export", str(checkpoint), "--target", "loihi", "--samples", "8",
                                      "--max-drop", "100"])
    assert result.exit_code == 0, result.output
    return checkpoint, checkpoint.parent / "export" / "resnet.net.h5"


GEOMETRY_FAULTS = {  # node/1 is layer1.0.conv1: 3x3, stride 1, padding 1 on the stem's 2x4x4
    "padding 10^6": ("node/1/connection/0/padding", [10**6, 10**6], "padding=(1000000, 1000000) of conv layer "
                     "blocks.layer1.0.conv1 exceeds its 4x4 input"),
    "stride 2": ("node/1/connection/0/stride", [2, 2], "maps its 4x4 input to 2x2; its neurons are 4x4"),
    "padding 2": ("node/1/connection/0/padding", [2, 2], "maps its 4x4 input to 6x6; its neurons are 4x4"),
    "dilation 3": ("node/1/connection/0/dilation", [3, 3], "maps its 4x4 input to 0x0; its neurons are 4x4"),
}


@pytest.mark.parametrize("deployed", [False, True], ids=["alone", "deployed"])
@pytest.mark.parametrize("case", list(GEOMETRY_FAULTS))
def test_a_conv_whose_geometry_does_not_give_its_nodes_shape_is_one_line(tmp_path, exported_resnet, case, deployed):
    checkpoint, exported = exported_resnet
    assert _profile(exported, tmp_path / "good")[0].exit_code == 0  # the file as exported profiles
    key, value, words = GEOMETRY_FAULTS[case]
    path = tmp_path / "crafted.net.h5"
    path.write_bytes(exported.read_bytes())
    _replace(path, key, lambda handle, key, old: handle.create_dataset(key, data=np.array(value)))
    args = (checkpoint, "--deployed", str(path)) if deployed else (path,)
    result, out = _profile(*args[:1], tmp_path, *args[1:])
    _one_line_error(result, path.name, words)
    assert not out.exists()


def test_a_netx_conv_whose_geometry_does_not_give_its_layers_shape_is_one_line(tmp_path):
    # layer/1: 3x3 on 1x8x8 gives 6x6 at stride 1; at stride 2, (8 - 3) // 2 + 1 = 3
    path = _conv_netx(tmp_path)
    _replace(path, "layer/1/stride", lambda handle, key, old: handle.create_dataset(key, data=np.array([2, 2])))
    result, out = _profile(path, tmp_path)
    _one_line_error(result, path.name, "conv layer conv", "stride=(2, 2)", "maps its 8x8 input to 3x3; its neurons are 6x6")
    assert not out.exists()


def _chip_file(tmp_path, **changes) -> Path:
    from snnpipe.hw_targets.chip import CHIP_DIR

    text = (CHIP_DIR / "loihi.toml").read_text()
    for key, value in changes.items():
        line = next(line for line in text.splitlines() if line.startswith(f"{key} = "))
        text = text.replace(line, f"{key} = {value}")
    path = tmp_path / "chip.toml"
    path.write_text(text)
    return path


def test_a_chip_or_target_constant_of_1e308_is_refused(tmp_path):
    # 1e308 pJ times a count is inf; inf - inf (the spread) gave stderr_pj=nan and a traceback
    path = _netx(tmp_path)
    chip = _chip_file(tmp_path, synop_pj="1e308")
    result, out = _profile(path, tmp_path, "--energy-model", "chip", "--chip-file", str(chip))
    _one_line_error(result, "chip.toml", "synop_pj=1e+308", "[0, 1e+06]")
    target = tmp_path / "target.toml"
    target.write_text('name = "t"\nac_pj = 1e308\nmac_pj = 1.0\n')
    result, out = _profile(path, tmp_path, "--target-file", str(target))
    _one_line_error(result, "target.toml", "ac_pj=1e+308", "[0, 1e+06]")
    assert not out.exists()


def test_a_chip_name_that_is_not_a_short_line_is_refused(tmp_path):
    path = _netx(tmp_path)
    for toml, words in (('"' + "x" * 65 + '"', ("name='xxxxxxxxxxxxxxxxxxxx'... (65 characters)", "at most 64")),
                        ('"a\\nb"', ("name='a\\nb'", "printable"))):
        chip = _chip_file(tmp_path, name=toml)
        result, out = _profile(path, tmp_path, "--energy-model", "chip", "--chip-file", str(chip))
        _one_line_error(result, "chip.toml", *words)
        assert not out.exists()


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (PROBE_BYTES, PROBE_BYTES))


def _probe(args: list[str], cwd, timeout: float = 60) -> subprocess.CompletedProcess:
    """``snnpipe *args`` in a subprocess under `PROBE_BYTES` of address space; a run past ``timeout``
    fails the test (what a hang on a crafted file did)."""
    try:
        return subprocess.run([sys.executable, "-m", "snnpipe", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_limited)
    except subprocess.TimeoutExpired:
        pytest.fail(f"snnpipe {' '.join(args)[:80]} ran past {timeout} s")


def _one_line_exit_2(done: subprocess.CompletedProcess, *words: str) -> None:
    output = done.stdout + done.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, output[-2000:])
    assert len(lines) == 1 and lines[0].startswith("Error:") and "Traceback" not in output, output[-2000:]
    for word in words:
        assert word in lines[0], lines[0]


def test_a_ten_megabyte_target_name_is_refused_without_hanging(tmp_path):
    path = _netx(tmp_path)
    target = tmp_path / "target.toml"
    target.write_text('name = "' + "y" * 10_000_000 + '"\nac_pj = 1.0\nmac_pj = 1.0\n')
    done = _probe(["profile", str(path), "--samples", "8", "--out", "report", "--target-file", str(target)], tmp_path)
    # 'name = "' (8) + 10^7 + '"\n' (2) + 'ac_pj = 1.0\n' (12) + 'mac_pj = 1.0\n' (13) = 10,000,035 bytes
    _one_line_exit_2(done, "target.toml", "10,000,035 bytes", "at most 65,536")
    assert not (tmp_path / "report").exists()
    assert not list(tmp_path.glob(f".*{TEMP_MARK}*"))


# --- item 11: billion laughs --------------------------------------------------------------------------------

#: 8 anchors, each 9 aliases of the one before: 9^8 = 43,046,721 strings, in 337 bytes.
LAUGHS = "[" + ", ".join(["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
    f"&{k} [{', '.join([f'*{p}'] * 9)}]" for p, k in zip("abcdefg", "bcdefgh")]) + "]"

BILLION_LAUGHS = {
    "name": ["run", "recipe.yaml"],
    "model_args": ["run", "recipe.yaml"],
    "sweep": ["run", "recipe.yaml"],
    "config": ["train", "--config", "recipe.yaml"],
}


@pytest.mark.parametrize("where", list(BILLION_LAUGHS))
def test_a_billion_laughs_document_is_refused_in_one_line(tmp_path, where):
    text = {
        "name": f"name: {LAUGHS}\nsteps:\n  - train: {{epochs: 1}}\n",
        "model_args": f"name: x\ndefaults:\n  model_args: {{hidden: {LAUGHS}}}\nsteps:\n  - train: {{epochs: 1}}\n",
        "sweep": f"name: x\nsteps:\n  - train: {{epochs: 1, sweep: {{lr: {LAUGHS}}}}}\n",
        "config": f"model_args: {{hidden: {LAUGHS}}}\n",
    }[where]
    assert len(text) < 500  # a few hundred bytes
    (tmp_path / "recipe.yaml").write_text(text)
    done = _probe(BILLION_LAUGHS[where], tmp_path)
    _one_line_exit_2(done, "recipe.yaml", "expands to over 1,000,000", "(its aliases repeated)")
    assert not (tmp_path / "runs").exists()


def test_a_large_recipe_is_refused_by_its_size_before_it_is_parsed(tmp_path, monkeypatch):
    """A 1 MB recipe without an alias: refused as a file too large (PyYAML never runs), not after
    seconds of parsing as one that "expands ... (its aliases repeated)"."""
    import yaml

    from snnpipe.yaml_text import load_yaml

    text = "name: x\nsteps:\n  - train: {epochs: 1}\nnotes: [" + "a," * 500_000 + "a]\n"
    (tmp_path / "recipe.yaml").write_text(text)
    monkeypatch.setattr(yaml, "SafeLoader", None)  # parsing it would be a TypeError traceback
    monkeypatch.chdir(tmp_path)
    for args in (["run", "recipe.yaml"], ["train", "--config", "recipe.yaml"]):
        result = CliRunner().invoke(cli, args)
        _one_line_error(result, "recipe.yaml", "is over 65,536 characters", "right file")  # 64 KiB
        assert "alias" not in result.output
    assert not (tmp_path / "runs").exists()
    monkeypatch.undo()
    # the densest text without an alias, {a,a,...} (3 values and characters per 2 characters), of 65,535
    # characters counts 1 + 3 * 32,767 = 98,302, under 1,000,000: only aliases take a document past it
    assert load_yaml("{" + ",".join(["a"] * 32_767) + "}", "doc") == {"a": None}


def test_the_expanded_size_is_counted_as_worked_out_by_hand():
    # a sequence node (1) of k aliases of one 999-character string (1 + 999 each): 1 + 1000 k
    from snnpipe.yaml_text import load_yaml

    item = "x" * 999
    loaded = load_yaml(f"[&a {item}" + ", *a" * 998 + "]", "doc")  # k = 999: 999,001
    assert loaded == [item] * 999
    with pytest.raises(ValueError, match="doc expands to over 1,000,000"):
        load_yaml(f"[&a {item}" + ", *a" * 999 + "]", "doc")  # k = 1000: 1,000,001


def test_a_recursive_or_too_deep_document_is_one_line(tmp_path):
    for text, words in (("name: &a [*a]\n", ("refers to itself",)), ("name: " + "[" * 5000 + "\n", ("nests too deep",))):
        (tmp_path / "recipe.yaml").write_text(text)
        result = CliRunner().invoke(cli, ["run", str(tmp_path / "recipe.yaml")])
        _one_line_error(result, "recipe.yaml", *words)
