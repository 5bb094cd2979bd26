"""What a checkpoint file must be before torch reads it: there, and a zip archive (or a legacy
pickle). Torch-free, so that the CLI refuses a wrong path at once; `checkpoint.Checkpoint.load`
reads what passes."""

from __future__ import annotations

from pathlib import Path

from snnpipe.errors import SnnpipeError

#: The first bytes of a torch.save file: a zip archive, or (before torch 1.6) a pickle's protocol byte.
_ZIP_MAGIC, _PICKLE_PROTO = b"PK\x03\x04", b"\x80"


class CheckpointError(SnnpipeError):
    """A checkpoint that is missing, corrupt, of another schema or for another model."""


def is_nir_file(path: str | Path) -> bool:
    """Whether ``path`` names a NIR graph (``FILE.nir``, as ``snnpipe profile`` takes it), which
    export and train read in place of a checkpoint."""
    return Path(path).suffix.lower() == ".nir"


def check_checkpoint_file(path: str | Path) -> Path:
    """``path`` as a Path, if it names a file that begins as a checkpoint; else `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the path of a .pt file")
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:2] != _ZIP_MAGIC[:2] and head[:1] != _PICKLE_PROTO:
        raise CheckpointError(
            f"{path} is not a checkpoint (a .pt file begins as a zip archive; this one begins with {head!r}); "
            "give the checkpoint.pt that snnpipe train wrote"
        )
    return path
