"""Write and read Lava netx HDF5 files (lava-dl 0.6.0, ``lava/lib/dl/netx/hdf5.py``).

Layout, as netx's ``Network._create`` reads it::

    layer/0    type "input",   shape (C, H, W)                       # no neuron: spikes go straight in
    layer/i    type "flatten", shape (n,)                            # before a dense layer on an image
    layer/i    type "dense",   shape (n,), inFeatures, outFeatures, weight (out, in) [, bias (out,)]
    layer/i    type "conv",    shape (C, H, W), inChannels, outChannels, kernelSize, stride, padding,
               dilation, groups, weight (out, in/groups, kh, kw) [, bias (out,)]
    layer/i/neuron   type "CUBA", iDecay, vDecay, vThMant, refDelay, gradedSpike

Shapes and (height, width) pairs are written in torch's order; netx reverses them to its (x, y, z) =
(W, H, C), flips conv kernels (Lava's ``Conv`` convolves, torch correlates) and flattens in (C, H, W)
order, so the file is torch's layout. Weights are integers: netx derives Loihi's weight exponent and
precision from them (`fixed_point.dense_synapse_format`). A bias is netx's ``bias_mant`` with
``bias_exp`` 6.

netx ignores HDF5 attributes; snnpipe keeps its own there (the module path of each layer, the
readout flag, the timesteps and encoding of the input, the dataset it was tested on) so that
`read_netx` gives back the `LoihiNetwork` that was written.

Files written by lava-dl's own ``export_hdf5`` (slayer's ``Dense``, ``Conv``, ``Flatten`` and ``Input``
blocks with CUBA neurons) read as netx reads them (``Network._create``): a layer without a name is
called ``layer/<i>``; a file without an input layer takes the first dense layer's ``inFeatures``
(netx needs no input shape for a dense layer; a conv cannot infer one); ``refDelay`` and
``gradedSpike`` are ignored, as netx's ``get_neuron_params`` ignores them for CUBA neurons. What
netx would run differently from the simulator is refused, naming the layer: an input layer with its
own neuron (netx's ``Input`` block is driven through its neuron's bias, not by the spikes sent to the
network), axonal ``delay`` datasets (netx's ``DelayDense``), graded output (``messageBits``), complex
weights, a layer without a neuron, and any other layer or neuron type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from snnpipe.errors import SnnpipeError
from snnpipe.hw_targets.hdf5_file import ForeignHdf5Error, open_hdf5
from snnpipe.hw_targets.isolated import in_child
from snnpipe.hw_targets.loihi.network import CubaNeuron, LoihiLayer, LoihiNetwork

FORMAT = "snnpipe.loihi.netx/1"
#: What h5py and numpy raise on a damaged file (h5py: OSError, KeyError, RuntimeError; numpy and the
#: layer checks: ValueError, TypeError; a damaged group: AttributeError, IndexError).
READ_ERRORS = (OSError, KeyError, RuntimeError, ValueError, TypeError, AttributeError, IndexError)
#: Seconds a netx file may take to read; longer means a damaged file the HDF5 library loops on.
READ_TIMEOUT = 60.0


class NetxError(SnnpipeError):
    """A netx file that does not exist, is damaged, or is not a chain of layers this reader knows."""


def _type(group: h5py.Group, name: str) -> None:
    group.create_dataset("type", (1,), "S10", [name.encode("ascii")])


def _read_type(group: h5py.Group) -> str:
    value = group["type"]
    raw = value[0] if value.shape else value[()]
    return raw.decode("ascii") if isinstance(raw, bytes) else str(raw)


def _write_neuron(group: h5py.Group, neuron: CubaNeuron) -> None:
    sub = group.create_group("neuron")
    sub.create_dataset("type", data="CUBA")
    sub.create_dataset("iDecay", data=neuron.i_decay)
    sub.create_dataset("vDecay", data=neuron.v_decay)
    sub.create_dataset("vThMant", data=neuron.vth_mant)
    sub.create_dataset("refDelay", data=1)
    sub.create_dataset("gradedSpike", data=False)
    group.attrs["readout"] = neuron.readout


def _read_neuron(group: h5py.Group, where: str = "") -> CubaNeuron:
    """The CUBA neuron of ``group`` (``where``: the layer, for messages)."""
    where = f"{where}: " if where else ""
    if "neuron" not in group:
        raise ValueError(f"{where}the layer has no neuron (netx would give it a current decay of -1)")
    sub = group["neuron"]
    kind = sub["type"][()]
    kind = kind.decode("ascii") if isinstance(kind, bytes) else str(kind)
    if kind != "CUBA":
        raise ValueError(f"{where}neuron type {kind!r} is not CUBA (the Loihi LIF this simulator runs)")
    if "messageBits" in sub and int(sub["messageBits"][()]):
        raise ValueError(f"{where}graded output spikes (messageBits {int(sub['messageBits'][()])}) are not simulated")
    try:
        return CubaNeuron(int(sub["iDecay"][()]), int(sub["vDecay"][()]), int(sub["vThMant"][()]),
                          bool(group.attrs.get("readout", False)))
    except ValueError as err:
        raise ValueError(f"{where}{err}") from None


def _write_dense(group: h5py.Group, layer: LoihiLayer) -> None:
    group.create_dataset("inFeatures", data=layer.in_features)
    group.create_dataset("outFeatures", data=layer.neurons)


def _read_dense(group: h5py.Group) -> dict[str, Any]:
    return {}


def _write_conv(group: h5py.Group, layer: LoihiLayer) -> None:
    group.create_dataset("inChannels", data=layer.in_shape[0])
    group.create_dataset("outChannels", data=layer.out_shape[0])
    group.create_dataset("kernelSize", data=np.array(layer.kernel_size))
    group.create_dataset("stride", data=np.array(layer.stride))
    group.create_dataset("padding", data=np.array(layer.padding))
    group.create_dataset("dilation", data=np.array(layer.dilation))
    group.create_dataset("groups", data=layer.groups)


def _read_conv(group: h5py.Group) -> dict[str, Any]:
    return {key: tuple(int(v) for v in np.broadcast_to(group[key][()], (2,)))
            for key in ("stride", "padding", "dilation")} | {"groups": int(group["groups"][()])}


#: One table for the writer and the reader: layer type -> (write extra fields, read them back).
LAYER_IO: dict[str, tuple[Callable[[h5py.Group, LoihiLayer], None], Callable[[h5py.Group], dict]]] = {
    "dense": (_write_dense, _read_dense),
    "conv": (_write_conv, _read_conv),
}


def write_netx(net: LoihiNetwork, path: str | Path, attrs: dict[str, Any] | None = None) -> None:
    """Write ``net`` to ``path`` (overwritten). ``attrs`` go to the file's root attributes.

    The writing runs in a forked child (`isolated.in_child`): onto a full disk h5py reports the
    failed write and then crashes the process as its objects are freed.

    Raises:
        OSError: the file could not be written (a full disk, or the writer crashed).
    """
    in_child(_write_netx, net, path, attrs, timeout=READ_TIMEOUT, doing="writing",
             failure=lambda reason: OSError(f"writing {path} failed: {reason}"))


def _write_netx(net: LoihiNetwork, path: str | Path, attrs: dict[str, Any] | None) -> None:
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = FORMAT
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        root = handle.create_group("layer")
        index = 0
        group = root.create_group(str(index))
        _type(group, "input")
        group.create_dataset("shape", data=np.array(net.input_shape))
        for layer in net.layers:
            if layer.flatten:
                index += 1
                group = root.create_group(str(index))
                _type(group, "flatten")
                group.create_dataset("shape", data=np.array([layer.in_features]))
            index += 1
            group = root.create_group(str(index))
            _type(group, layer.kind)
            group.attrs["name"] = layer.name
            group.create_dataset("shape", data=np.array(layer.out_shape))
            LAYER_IO[layer.kind][0](group, layer)
            group.create_dataset("weight", data=layer.weight.astype(np.int16))
            if layer.bias is not None:
                group.create_dataset("bias", data=layer.bias.astype(np.int16))
            _write_neuron(group, layer.neuron)


def read_netx(path: str | Path) -> tuple[LoihiNetwork, dict[str, Any]]:
    """The network in a netx file written by `write_netx` (or by lava-dl, for these layer types),
    and the file's root attributes (`read_isolated`).

    Raises:
        NetxError: a missing or damaged file (also one the reading crashed on or spent
            `READ_TIMEOUT` seconds on), a layer type this reader does not know, values out of
            Loihi's ranges, or a file that is not a chain; one line, naming the cause.
    """
    return read_isolated(path, _read_netx, NetxError, "netx file")


def read_isolated(path: str | Path, reader: Callable[[Path], Any], error: type[SnnpipeError], what: str,
                  hint: str = "re-export it with snnpipe export --target loihi") -> Any:
    """``reader(path)`` in a forked child (`isolated.in_child`), as for NIR files: the HDF5 library
    can loop or crash on a damaged file. Every failure is one ``error`` naming ``path`` and the cause,
    then ``hint``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} does not exist")
    try:
        return in_child(reader, path, timeout=READ_TIMEOUT, failure=lambda reason: error(
            f"{path} is a damaged {what}: {reason}; {hint}"))
    except ForeignHdf5Error as err:
        raise error(f"{path} is not a {what} snnpipe reads: {err}") from None
    except READ_ERRORS as err:
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise error(f"{path} is not a {what} snnpipe can read ({type(err).__name__}: {reason}); {hint}") from None


def _read_netx(path: Path) -> tuple[LoihiNetwork, dict[str, Any]]:
    with open_hdf5(path) as handle:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in handle.attrs.items()}
        root = handle["layer"]
        input_shape: tuple[int, ...] | None = None
        layers: list[LoihiLayer] = []
        shape: tuple[int, ...] = ()
        flatten = False
        for index in range(len(root)):
            group = root[str(index)]
            kind = _read_type(group)
            where = f"layer/{index}"
            if kind == "input":
                if "neuron" in group:
                    raise ValueError(f"{where}: an input layer with its own neuron (slayer's Input block with neuron_params) "
                                     "takes its input through the neuron's bias in netx, not as spikes; export the network "
                                     "without it (the spikes then go straight into the first layer)")
                input_shape = shape = tuple(int(n) for n in group["shape"][()])
                continue
            if kind == "flatten":
                flatten = True
                continue
            if kind not in LAYER_IO:
                raise ValueError(f"{where} has type {kind!r}; this reader knows input, flatten, {', '.join(LAYER_IO)}")
            if not isinstance(group.get("weight"), h5py.Dataset):
                raise ValueError(f"{where}: its weight is not one integer array (complex weights are not simulated)")
            if "delay" in group:
                raise ValueError(f"{where}: axonal delays (netx's DelayDense) are not simulated")
            weight = group["weight"][()]
            if input_shape is None and not layers:
                if kind != "dense":
                    raise ValueError(f"the file has no input layer and {where} is a {kind}: netx cannot infer its input shape")
                input_shape = shape = (int(np.prod(weight.shape[1:])) if weight.ndim > 1 else int(group["inFeatures"][()]),)
            out_shape = tuple(int(n) for n in group["shape"][()])
            if kind == "dense":  # netx: a flat weight is (out, -1); the neurons are flat
                out_shape = (int(np.prod(out_shape)),)
                weight = weight.reshape(out_shape[0], -1)
            in_shape = (int(np.prod(shape)),) if flatten else shape
            layer = LoihiLayer(
                name=str(group.attrs.get("name", where)), kind=kind, in_shape=in_shape, out_shape=out_shape,
                weight=weight, bias=group["bias"][()] if "bias" in group else None, neuron=_read_neuron(group, where),
                flatten=flatten, **LAYER_IO[kind][1](group),
            )
            layers.append(layer)
            shape, flatten = layer.out_shape, False
        if input_shape is None:
            raise ValueError("the file has no input layer (layer/0 of type 'input') and no layer")
    return LoihiNetwork(input_shape, layers), attrs
