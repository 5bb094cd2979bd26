"""Each framework's own NIR writer on its conv and residual net (`tests/framework_nets.py`): where the
file is written, ``snnpipe import nir`` reads it and the imported network spikes as the framework's
model, neuron layer by neuron layer, gives its output and profiles with its counts; where the writer fails, the test is an
expected failure that carries the writer's exact error (the README's table of frameworks quotes them).

SpikingJelly 0.0.0.0.14 (installed for the profiler's tests) has no NIR writer; SpikingJelly 2 has
(``nir_exchange.export_to_nir``): CI runs this file again with SpikingJelly 2 on PYTHONPATH (.ci/run).
"""

import importlib.metadata

import nir
import pytest
import torch

import framework_nets as F
from snnpipe.models.neurons import CubaLIF
from snnpipe.pipeline.importer import import_nir
from snnpipe.pipeline.profile import profile_module

T, BATCH = 6, 3


def _spikingjelly_writer():
    version = importlib.metadata.version("spikingjelly")
    try:
        from spikingjelly.activation_based.nir_exchange import export_to_nir
    except ImportError:
        pytest.skip(f"SpikingJelly {version} has no NIR writer (SpikingJelly 2 has: CI runs this with it)")
    return lambda net, sample: export_to_nir(net, sample)


def _writer(framework: str):
    if framework == "snntorch":
        from snntorch.export_nir import export_to_nir

        return lambda net, sample: export_to_nir(net, sample)
    if framework == "norse":
        import norse.torch as norse

        return lambda net, sample: norse.to_nir(net, sample)
    if framework == "sinabs":
        import sinabs

        return lambda net, sample: sinabs.to_nir(net, sample)
    return _spikingjelly_writer()


def _imported_spikes(model, x):
    """Our model's output (T, B, classes) and the spikes of its neuron modules, in their order."""
    recorded = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, n=n: recorded.setdefault(n, []).append(out.clone()))
               for n, m in model.named_modules() if isinstance(m, CubaLIF)]
    with torch.no_grad():
        out = model(x)
    for handle in handles:
        handle.remove()
    return out, [torch.stack(steps) for steps in recorded.values()]


@pytest.mark.parametrize("kind", F.KINDS)
@pytest.mark.parametrize("framework", F.FRAMEWORKS)
def test_the_framework_nir_writer(framework, kind, tmp_path):
    net = F.spiking(F.build(framework, kind, T)).eval()
    write = _writer(framework)
    path = tmp_path / f"{framework}-{kind}.nir"
    sample = torch.rand(T if framework == "sinabs" else 1, *F.INPUT_SHAPE)  # Sinabs: one call is the (B*T, ...) sequence
    try:
        nir.write(path, write(net, sample))
    except Exception as err:  # the writers' failures are many and untyped
        pytest.xfail(f"{framework}'s NIR writer on the {kind} net: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    torch.manual_seed(1)
    x = torch.rand(T, BATCH, *F.INPUT_SHAPE)
    theirs = F.record(framework, net, x)
    with torch.no_grad():
        logits = F.run(framework)(net, x)
    ckpt = import_nir(path, tmp_path / "imported.pt", timesteps=T, dataset=F.DATASET)
    model = ckpt.build_model().eval()
    out, ours = _imported_spikes(model, x)
    assert len(ours) == len(theirs) and all(s.sum() > 0 for s in theirs.values())
    for (name, spikes), got in zip(theirs.items(), ours):
        assert torch.equal(got, spikes), f"{name}: {int((got != spikes).sum())} spikes differ"
    assert (out.mean(0) - logits).abs().max() < 1e-5
    # profiled as it is: the framework model's counts (state: u and v against v, `tests/test_frameworks.py`)
    mine, their = profile_module(model, x), profile_module(net, x, run=F.run(framework))
    assert {**vars(mine.totals), "state_size": 0} == {**vars(their.totals), "state_size": 0}
    assert mine.totals.state_size == 2 * their.totals.state_size
