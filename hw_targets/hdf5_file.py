"""Opening an HDF5 file handed to a user (a netx, Loihi graph or NIR file): only what it holds itself.

HDF5 lets a file read others: an external link (``h5py.ExternalLink``) stands for an object of
another file, and a dataset's bytes can live in other files (external raw storage,
``create_dataset(external=...)``, or a virtual dataset's sources). A file from elsewhere would so be
profiled on another file's weights, or read any file the user can read. And a dataset declares its
shape: a (10^6, 10^6) weight whose chunks were never written takes 62 KB on disk and 1.8 TiB to
read. `open_hdf5` refuses all of these before anything is read; every reader of such a file opens
it through it (the netx and graph readers, and the NIR reader before it hands the file to ``nir``).
``loihi/lava_runner.py`` runs in Lava's own Python, which cannot import snnpipe; it opens only the
file `lava_bridge.run_lava` hands it, an export snnpipe has just written (``--verify lava``).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py

#: The most data a file's datasets may declare together: an exported network's weights take a few MB
#: (a Loihi 2 chip holds 24 MB of synapses), the largest zoo model in float32 some hundred MB.
MAX_DECLARED_BYTES = 1 << 30


class ForeignHdf5Error(ValueError):
    """An HDF5 file that reaches outside itself, or declares more data than `MAX_DECLARED_BYTES`."""


@contextmanager
def open_hdf5(path: str | Path) -> Iterator[h5py.File]:
    """``path`` opened for reading, once every link stays inside it, every dataset keeps its data
    in it and the datasets declare at most `MAX_DECLARED_BYTES`.

    Raises:
        ForeignHdf5Error: naming the object (and the other file) or the size.
        OSError: not an HDF5 file.
    """
    with h5py.File(path, "r") as handle:
        check_self_contained(handle)
        yield handle


def check_self_contained(handle: h5py.File) -> None:
    """Refuse external and user-defined links, external and virtual storage, and oversized
    declarations, in one walk over the file's links (none is followed out of the file).

    Raises:
        ForeignHdf5Error: the first object found, named.
    """
    declared = 0

    def visit(name: str, link: h5py.HardLink | h5py.SoftLink | h5py.ExternalLink) -> str | None:
        # h5py's walk cannot carry an exception out of this callback: a message stops it instead
        nonlocal declared
        if isinstance(link, h5py.ExternalLink):
            return f"{name} is a link to {link.path} in another file, {link.filename}; snnpipe reads only what a file holds"
        if isinstance(link, h5py.SoftLink):  # a path inside this file, whose object is visited by its hard link
            return None
        if not isinstance(link, h5py.HardLink):
            return f"{name} is a {type(link).__name__}, a kind of link snnpipe does not follow"
        try:
            dataset = handle.get(name)
        except (OSError, KeyError, RuntimeError, ValueError):  # damaged: the reader meets it itself
            return None
        if not isinstance(dataset, h5py.Dataset):
            return None
        if dataset.external:
            return (f"{name} keeps its data in another file, {dataset.external[0][0]!r} (external storage); snnpipe "
                    "reads only what a file holds")
        if dataset.is_virtual:
            return f"{name} is a virtual dataset, its data in other files; snnpipe reads only what a file holds"
        size = math.prod(dataset.shape or ()) * dataset.dtype.itemsize
        declared += size
        if declared > MAX_DECLARED_BYTES:
            shape = "x".join(map(str, dataset.shape or ()))
            return (f"its datasets declare over {MAX_DECLARED_BYTES / 2**30:g} GiB ({name}: {shape} {dataset.dtype}, "
                    f"{size / 2**30:.3g} GiB); a network snnpipe reads takes far less")
        return None

    problem = handle.visititems_links(visit)
    if problem:
        raise ForeignHdf5Error(problem)


#: The first bytes of every HDF5 file (the HDF5 format specification, "Format Signature").
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: Names of Loihi files that may not read as HDF5 (damaged): netx's own ``.net`` (lava-dl's examples).
LOIHI_SUFFIXES = (".h5", ".hdf5", ".net")


def is_loihi_file(path: str | Path) -> bool:
    """An HDF5 file (netx, or snnpipe's Loihi graph), or one named as such; a checkpoint is a zip."""
    try:
        with open(path, "rb") as handle:
            if handle.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
    except OSError:
        pass
    return Path(path).suffix.lower() in LOIHI_SUFFIXES
