"""Which modules are neuron layers, framework by framework: one `NeuronFramework` entry each.

An entry names the framework's neuron classes (imported only when the framework is installed) and
how to read one call of such a layer:

- ``layout(module)``: what one call covers. None: one timestep, input (B, ...). ``"time"``: the
  whole sequence, time-major, (T, B, ...) or flattened (T*B, ...) (SpikingJelly multi-step,
  Norse's ``LIF``). ``"batch"``: the whole sequence, batch-major, (B, T, ...) or (B*T, ...) (Sinabs).
- ``spikes(output)``: the spike tensor in what the layer returns (snnTorch and Norse return a tuple).
- ``state_variables(module, output)``: the membrane state per neuron (u and v for CUBA LIF ...).
- ``to_ir(module)``: the layer as the IR's neuron node (`pipeline.neuron_adapters`: the framework's neuron as the
  CUBA LIF, raising `UnsupportedNeuronError` for what it cannot hold); None where the framework has none.
- ``output(module)``: ``"spikes"`` (every value 0 or 1), ``"counts"`` (integers >= 0, each unit a
  spike: Sinabs' MultiSpike), or ``"values"`` (graded: the next layer's input is tested value by
  value, as NeuroBench does).

Adding a framework is one `register_framework` call. ``ann`` (ReLU) is an entry too: the ANN twin's
activations are counted as its neuron layers, never as spikes.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import Tensor, nn

from snnpipe.models.neurons import CubaLIF, LeakyIntegrator, ReLU, ThresholdLayer
from snnpipe.pipeline import neuron_adapters as adapters
from snnpipe.registry import register_into


def _first(output: Any) -> Tensor:
    return output[0] if isinstance(output, tuple) else output


@dataclass(frozen=True)
class NeuronFramework:
    """One framework's neuron layers (the module docstring describes the readers).

    Attributes:
        name: the entry's name in `FRAMEWORKS`.
        package: the module holding the classes; the entry matches nothing until it is imported.
        class_names: the neuron classes in it (names this version of the framework lacks are skipped).
        spiking: its layers emit spikes (False: the ANN twin's activations).
        accepts: a further test of a matching module (Sinabs: it has a spike function).
    """

    name: str
    package: str
    class_names: tuple[str, ...]
    spiking: bool = True
    layout: Callable[[nn.Module], str | None] = lambda module: None
    spikes: Callable[[Any], Tensor] = _first
    state_variables: Callable[[nn.Module, Any], int] = lambda module, output: 1
    output: Callable[[nn.Module], str] = lambda module: "spikes"
    accepts: Callable[[nn.Module], bool] = lambda module: True
    to_ir: Callable[[nn.Module], Any] | None = None
    _classes: list = field(default_factory=list, compare=False, repr=False)

    def classes(self) -> tuple[type, ...]:
        """The neuron classes; () while the framework is not imported (a model of it has imported it,
        so a profile never imports a framework it does not use)."""
        if not self._classes:
            if self.package.split(".")[0] not in sys.modules:
                return ()
            package = importlib.import_module(self.package)
            found = (getattr(package, name, None) for name in self.class_names)
            self._classes.append(tuple(cls for cls in found if isinstance(cls, type)))
        return self._classes[0]

    def matches(self, module: nn.Module) -> bool:
        classes = self.classes()
        return bool(classes) and isinstance(module, classes) and self.accepts(module)


FRAMEWORKS: dict[str, NeuronFramework] = {}


def register_framework(framework: NeuronFramework) -> NeuronFramework:
    """Add a framework's neuron layers; refuses a name already registered."""
    return register_into(FRAMEWORKS, framework.name, "neuron framework")(framework)


def framework_of(module: nn.Module) -> NeuronFramework | None:
    """The entry whose neuron layer ``module`` is (the first that matches), or None."""
    return next((f for f in FRAMEWORKS.values() if f.matches(module)), None)


def is_spiking_neuron(module: nn.Module) -> bool:
    """A spiking neuron layer of any registered framework (not the ANN twin's ReLU)."""
    framework = framework_of(module)
    return framework is not None and framework.spiking


# The ANN twin first: snnpipe's ReLU is a `Neuron` too.
register_framework(NeuronFramework(
    "ann", "torch.nn", ("ReLU",), spiking=False, state_variables=lambda m, o: 0, output=lambda m: "values"))
register_framework(NeuronFramework(
    "ann-snnpipe", "snnpipe.models.neurons", ("ReLU",), spiking=False, state_variables=lambda m, o: 0,
    output=lambda m: "values"))
# snnpipe: CUBA LIF keeps current u and voltage v (SPEC §2), as the leaky integrator (graded output) does;
# a Threshold layer spikes and keeps nothing
register_framework(NeuronFramework(
    "snnpipe", "snnpipe.models.neurons", ("Neuron",), accepts=lambda m: not isinstance(m, ReLU),
    state_variables=lambda m, o: 2 if isinstance(m, (CubaLIF, LeakyIntegrator)) else 0 if isinstance(m, ThresholdLayer) else 1,
    output=lambda m: "spikes" if isinstance(m, (CubaLIF, ThresholdLayer)) else "values"))

#: snnTorch neurons by class name: how many state variables each keeps, for when it returns the
#: spikes alone (``init_hidden=True``); otherwise it returns (spk, *states).
_SNNTORCH_STATES = {"Leaky": 1, "Lapicque": 1, "RLeaky": 1, "Synaptic": 2, "RSynaptic": 2, "Alpha": 3}
register_framework(NeuronFramework(
    "snntorch", "snntorch", ("SpikingNeuron",),
    state_variables=lambda m, o: len(o) - 1 if isinstance(o, tuple) else _SNNTORCH_STATES.get(type(m).__name__, 1),
    # graded spikes (a factor other than 1) are not 0/1
    output=lambda m: "spikes" if float(getattr(m, "graded_spikes_factor", 1.0)) == 1.0 else "values",
    to_ir=adapters.snntorch_neuron))

# SpikingJelly (``activation_based``): BaseNode keeps v; step_mode "m" takes (T, B, ...) at once
register_framework(NeuronFramework(
    "spikingjelly", "spikingjelly.activation_based.neuron", ("BaseNode",),
    layout=lambda m: "time" if getattr(m, "step_mode", "s") == "m" else None, to_ir=adapters.spikingjelly_neuron))

# Norse: cells take one step and return (z, state); the sequence modules take (T, B, ...); the
# state is a named tuple (LIFFeedForwardState(v, i): 2; a recurrent cell's LIFState(z, v, i) holds its
# last spikes too, not a state variable). Leaky integrators (LI*) do not spike.
_NORSE_SEQUENCES = ("LIF", "LIFBox", "LIFAdEx", "LIFEx", "IAF", "Izhikevich", "LIFRecurrent", "LIFAdExRecurrent",
                    "LIFExRecurrent", "IzhikevichRecurrent", "LIFRefracRecurrent")
register_framework(NeuronFramework(
    "norse", "norse.torch",
    ("LIFCell", "LIFBoxCell", "LIFAdExCell", "LIFExCell", "IAFCell", "IzhikevichCell", "LIFRefracCell",
     "CobaLIFCell", "LIFRecurrentCell", "LIFAdExRecurrentCell", "LIFExRecurrentCell", "IzhikevichRecurrentCell",
     "LIFRefracRecurrentCell", *(n for n in _NORSE_SEQUENCES if n != "LIFBox")),
    layout=lambda m: "time" if type(m).__name__ in _NORSE_SEQUENCES else None,
    state_variables=lambda m, o: len([f for f in getattr(o[1], "_fields", ()) if f != "z"]) if isinstance(o, tuple) else 1,
    to_ir=adapters.norse_neuron))

# Sinabs: every layer takes the whole sequence, (B, T, ...), or (B*T, ...) for the *Squeeze layers;
# v_mem (and i_syn with a synaptic time constant); MultiSpike (the default) emits integer counts
register_framework(NeuronFramework(
    "sinabs", "sinabs.layers", ("StatefulLayer",), accepts=lambda m: getattr(m, "spike_fn", None) is not None,
    layout=lambda m: "batch",
    state_variables=lambda m, o: sum(getattr(m, s, None) is not None for s in ("v_mem", "i_syn")),
    output=lambda m: "spikes" if getattr(m.spike_fn, "__name__", "") == "SingleSpike" else "counts",
    to_ir=adapters.sinabs_neuron))


def neuron_layers(model: nn.Module) -> dict[str, tuple[nn.Module, NeuronFramework]]:
    """Every neuron layer of a model by module path, with its framework entry."""
    found = {}
    for name, module in model.named_modules():
        framework = framework_of(module)
        if framework is not None:
            found[name or type(model).__name__] = (module, framework)
    return found

