"""The virtual environments snnpipe drives other projects in, behind a process boundary: Lava (it
needs Python 3.10) and SANA-FE (GPL-3). Each is made on first use, once however many processes ask:
under a lock beside its folder (`files.lock_output`: a second first use waits, then takes the
finished one), in a temporary folder renamed into place when complete (`files.atomic_folder`), so
the folder is never half built. A moved venv's python works (it finds itself from its executable);
only the console scripts pip wrote in its ``bin/`` name the temporary folder, and snnpipe runs none.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

from snnpipe.errors import SnnpipeError
from snnpipe.files import atomic_folder, lock_output


def build_venv(env_dir: Path, base: Path | str, requirements: list[str], unavailable: type[SnnpipeError],
               what_to_do: str) -> Path:
    """``base -m venv env_dir``, then ``pip install`` the requirements; returns the new python.

    Raises:
        unavailable: venv or pip failed: one line with the command's last line and ``what_to_do``.
    """
    python = env_dir / "bin" / "python"
    for command in ([str(base), "-m", "venv", str(env_dir)],
                    [str(python), "-m", "pip", "install", "--quiet", *requirements]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise unavailable(f"could not build the environment at {env_dir} ({' '.join(command[1:3])} failed: "
                              f"{last}); {what_to_do}")
    return python


def ensure_venv(env_dir: Path, works: Callable[[Path], bool], build: Callable[[Path], object]) -> Path:
    """The python of the environment at ``env_dir`` (`works` says whether a python is one), built by
    ``build(new_folder)`` when there is none: once, under the lock, replacing whatever broken one is there."""
    python = env_dir / "bin" / "python"
    if works(python):
        return python
    try:
        lock = lock_output(env_dir)
    except SnnpipeError:
        print(f"waiting for another process that is building the environment at {env_dir}", file=sys.stderr,
              flush=True)
        lock = lock_output(env_dir, wait=True)
    with lock:
        if works(python):  # the other process built it
            return python
        if env_dir.exists():
            shutil.rmtree(env_dir)  # not a working environment (the check above failed)
        with atomic_folder(env_dir, allowed=()) as new:
            build(new)
    return python
