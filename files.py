"""The files a command writes, kept safe: nothing a user has is lost, clobbered or left half-written.

- `atomic_path`, `atomic_folder`: a temporary file (folder) beside the target, then renamed (swapped)
  into place with the mode the umask gives; on failure it is removed and the old one stays.
  `atomic_group` puts several in place together (a file and its report), or none.
  `remove_orphan_temporaries` clears what a killed write left (names carrying `TEMP_MARK`).
- `lock_folder`, `claim_free_folder`: a folder belongs to one running command (``flock``);
  `lock_output`: so does one output (an exported file, a report folder, the Lava environment);
  inside `claimed_outputs`, each file a command writes is claimed so (`claim_output`, `atomic_path`).
- `disk_error`, `check_free_space`: a full disk named as such, and refused up front.
- `checksums`: what a finished step wrote, to tell later whether it is unchanged.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterable, Iterator

from snnpipe.errors import SnnpipeError


#: In the name of every temporary `atomic_path` and `atomic_folder` make: a write killed midway
#: leaves one behind, which `remove_orphan_temporaries` finds by it. Not ``.tmp-``: a user's
#: ``.draft.tmp-1`` or an editor's temporary is never taken for snnpipe's.
TEMP_MARK = ".snnpipe-tmp-"


#: The writes of the `atomic_group` open in this context, waiting to be put in place: (temporary, path).
_GROUP: ContextVar[list[tuple[Path, Path]] | None] = ContextVar("atomic_group", default=None)

#: The outputs this context claimed (`claimed_outputs`), by absolute path, with their locks.
_CLAIMS: ContextVar[dict[str, "FolderLock"] | None] = ContextVar("claimed_outputs", default=None)
#: The files the command of this `claimed_outputs` reads: none of its outputs may be one of them.
_INPUTS: ContextVar[tuple[Path, ...]] = ContextVar("claimed_inputs", default=())


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced, given the mode the umask
    gives, and renamed over ``path`` (inside an `atomic_group`: when the group ends), on failure
    removed, so no partial file is ever left where the user looks. Inside `claimed_outputs`,
    ``path`` is claimed first (`claim_output`)."""
    path = Path(path)
    claim_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp, pending = Path(name), _GROUP.get()
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 is for while it is being written
        if pending is None:
            os.replace(tmp, path)
        else:
            pending.append((tmp, path))
    finally:
        if pending is None or (tmp, path) not in pending:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_group() -> Iterator[None]:
    """Hold back every `atomic_path` inside until the block ends, then rename them all into place;
    where the block fails none is, and their temporaries are removed: an export's file and its
    report appear together or not at all (a full disk between the two leaves neither)."""
    pending: list[tuple[Path, Path]] = []
    token = _GROUP.set(pending)
    try:
        yield
        for tmp, path in pending:
            os.replace(tmp, path)
    finally:
        _GROUP.reset(token)
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)


def _temporary_prefix(path: Path) -> str:
    """The start of the names of ``path``'s temporaries (`atomic_path`, `atomic_folder`)."""
    return f".{path.name}{TEMP_MARK}"


def _umask() -> int:
    mask = os.umask(0)  # the only way to read it; set back at once
    os.umask(mask)
    return mask


#: Free bytes below which a failed write is taken for a full disk.
FULL_BYTES = 1 << 20


def disk_error(err: BaseException, path: Path) -> str:
    """What went wrong writing ``path``, in words a user can act on: a full disk (named as such
    even where the library that wrote reported something else), else the error's own text."""
    folder = _existing(Path(path).parent)
    full = getattr(err, "errno", None) == errno.ENOSPC or os.strerror(errno.ENOSPC) in str(err)  # h5py: in its text
    if full or shutil.disk_usage(folder).free < FULL_BYTES:
        return f"no space left on {folder}: free some and try again"
    if getattr(err, "errno", None):
        return os.strerror(err.errno)  # not h5py's strerror: a paragraph naming the errno
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuse work whose output cannot fit: ``needed`` bytes must be free where ``folder`` is.

    Raises:
        SnnpipeError: one line with both sizes.
    """
    free = shutil.disk_usage(_existing(Path(folder))).free
    if free < needed:
        raise SnnpipeError(f"{folder} has {free / 2**20:.1f} MB free and {what} needs about {needed / 2**20:.1f} MB: "
                           "free some space or choose another --out")


def _existing(folder: Path) -> Path:
    """``folder``, or its nearest ancestor that exists (where a new folder would be made)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


#: The lock file a running command holds in the folder it writes (`lock_folder`).
LOCK_NAME = ".snnpipe.lock"


class FolderLock:
    """An exclusive claim on a folder (`lock_folder`) or one output (`lock_output`), held by this
    process until `release` or its end (even by SIGKILL: the kernel drops a dead process's ``flock``)."""

    def __init__(self, folder: Path, fd: int, remove: Path | None = None) -> None:
        self.folder, self._fd, self._remove = folder, fd, remove

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *_) -> None:
        self.release()

    def release(self) -> None:
        if self._fd >= 0:
            if self._remove is not None:
                self._remove.unlink(missing_ok=True)  # while still held: see `lock_output`
            os.close(self._fd)  # closing drops the flock
            self._fd = -1


def lock_folder(folder: Path) -> FolderLock | None:
    """Create ``folder`` (and its parents) and take its lock; None where another process holds it."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return FolderLock(folder, fd)


def lock_output(path: Path, wait: bool = False) -> FolderLock:
    """Claim one output that a command replaces as a whole (an exported file, a report folder): the
    ``flock`` of ``.<name>.lock`` beside it, which holds the holder's process id and is removed on
    release. Then the temporaries that killed writes of ``path`` left are removed (`atomic_path`,
    `atomic_folder`): while the lock is held, nobody else writes them.

    Args:
        wait: wait for the holder to finish instead of refusing.

    Raises:
        SnnpipeError: another process holds it (and not ``wait``): one line naming its id; or its
            folder cannot be written.
    """
    path = Path(path)
    lock_path = path.with_name(f".{path.name}.lock")
    while True:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as err:
            raise SnnpipeError(f"cannot write {path} ({disk_error(err, path)}); choose a writable --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise SnnpipeError(f"another snnpipe command{f' (process {holder})' if holder.isdigit() else ''} is "
                               f"writing {path}; wait for it to finish, or choose another --out") from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder before removed this one as it released it: take the one there now
    lock = FolderLock(path.parent, fd, remove=lock_path)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _remove(p for p in path.parent.glob(f".*{TEMP_MARK}*") if _temporary_of(p) == path.name)
    except BaseException:  # SIGTERM (the CLI's `StopRequested`) included: no lock file left behind
        lock.release()
        raise
    return lock


@contextmanager
def claimed_outputs(inputs: Iterable[str | Path] = ()) -> Iterator[None]:
    """Hold every output claimed inside (`claim_output`; each file `atomic_path` writes) until the
    block ends: a command writing several files (an export's file, its report, the ONNX twin) owns
    each of them, and another command writing any one of them is refused; so is an output that is
    one of the command's ``inputs`` (--force or not, the user's file stays)."""
    claims: dict[str, FolderLock] = {}
    token, reading = _CLAIMS.set(claims), _INPUTS.set(tuple(Path(p) for p in inputs))
    try:
        yield
    finally:
        _CLAIMS.reset(token)
        _INPUTS.reset(reading)
        for lock in reversed(claims.values()):
            lock.release()


def claim_output(path: Path) -> None:
    """`lock_output` ``path`` until the enclosing `claimed_outputs` ends (once: a path claimed there
    already is this command's); outside one (a library call, no command) nothing. Claim each output
    before the work: a refusal then costs nothing.

    Raises:
        SnnpipeError: another process holds it, or it is one of the command's inputs.
    """
    claims, key = _CLAIMS.get(), os.path.abspath(path)
    if any(_same_file(path, source) for source in _INPUTS.get()):
        raise SnnpipeError(f"{path} is this command's input; give the output another --out")
    if claims is not None and key not in claims:
        claims[key] = lock_output(Path(path))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one does not exist (yet): no file to lose
        return False


def holds_work(folder: Path) -> bool:
    """Whether ``folder`` holds anything but a lock file: a run's output, or a user's files."""
    return folder.exists() and any(entry.name != LOCK_NAME for entry in folder.iterdir())


def claim_free_folder(base: Path) -> FolderLock:
    """The first of ``base``, ``base-2``, ``base-3`` ... that no running command holds and that holds
    no work, claimed (locked) by this process: two commands started together take two folders."""
    n = 1
    while True:
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        if not holds_work(folder):
            lock = lock_folder(folder)
            if lock is not None:
                if not holds_work(folder):  # still free now that it is ours
                    return lock
                lock.release()
        n += 1


def remove_if_unused(folder: Path) -> None:
    """Remove a folder this process claimed and wrote nothing into (its lock file alone)."""
    if folder.exists() and not holds_work(folder):
        (folder / LOCK_NAME).unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            pass  # someone else's file appeared meanwhile: keep the folder


#: The whole name of a temporary `atomic_path` or `atomic_folder` made: ``.<name>.tmp-``, the 8
#: characters `tempfile` draws (``[a-z0-9_]``), then the write's suffix (``.nir``) if any.
TEMP_NAME = re.compile(rf"\.(.+){re.escape(TEMP_MARK)}[a-z0-9_]{{8}}(\.[A-Za-z0-9]+)?")


def _temporary_of(entry: Path) -> str | None:
    """The name of the file whose temporary ``entry`` is (a whole `TEMP_NAME`, no link), else None."""
    match = TEMP_NAME.fullmatch(entry.name)
    return None if match is None or entry.is_symlink() else match.group(1)


def _remove(entries: Iterable[Path]) -> list[Path]:
    removed = list(entries)
    for entry in removed:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)  # a report folder being written (`atomic_folder`)
        else:
            entry.unlink(missing_ok=True)
    return removed


def _snnpipes(entry: Path) -> bool:
    """Whether ``entry`` is a lock file or a temporary of snnpipe's own (left by a killed command):
    no reason to refuse a folder, and handed back with the rest if it holds it (`atomic_folder`)."""
    return (entry.name.startswith(".") and entry.name.endswith(".lock")) or _temporary_of(entry) is not None  # LOCK_NAME too


def remove_orphan_temporaries(folder: Path, subfolders: Iterable[str]) -> list[Path]:
    """Remove the temporaries that writes killed midway left in ``folder`` itself and in each of its
    ``subfolders`` (relative paths: the folders snnpipe writes there); returns them. Only whole
    `TEMP_NAME` names are touched, never a symbolic link, and nothing below: a folder the caller did
    not name (a user's own, inside a step's folder) is not looked into."""
    roots = [folder, *(folder / name for name in subfolders if not _through_link(folder, Path(name)))]
    return _remove(p for root in roots if root.is_dir() for p in root.iterdir() if _temporary_of(p) is not None)


def _through_link(folder: Path, relative: Path) -> bool:
    """Whether a folder on the way from ``folder`` to ``folder / relative`` is a symbolic link."""
    return any((folder / Path(*relative.parts[:n])).is_symlink() for n in range(1, len(relative.parts) + 1))


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below ``folder`` (but lock files), by path relative to it."""
    if not folder.is_dir():
        return {}
    sums = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != LOCK_NAME:
            sums[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return sums


def changed_files(folder: Path, recorded: dict[str, str]) -> list[str]:
    """The files of ``recorded`` (what `checksums` of ``folder`` gave once) that are missing, changed,
    a link or outside ``folder`` now; files added since (a user's) are not looked at."""
    root = folder.resolve()
    changed = []
    for name, digest in recorded.items():
        path = folder / name
        if (path.is_symlink() or not path.is_file() or not path.resolve().is_relative_to(root)
                or hashlib.sha256(path.read_bytes()).hexdigest() != digest):
            changed.append(name)
    return changed


def _renameat2() -> Callable[[Path, Path, int], int] | None:
    """Linux's ``renameat2`` (glibc >= 2.28), returning 0 or the errno: with `_EXCHANGE` it swaps
    two paths in one step, with `_NOREPLACE` it renames only where the target name is free."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        call = libc.renameat2
    except (OSError, AttributeError):
        return None
    at_fdcwd = -100

    def rename(a: Path, b: Path, flags: int) -> int:
        return 0 if call(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0 else ctypes.get_errno()

    return rename


_RENAMEAT2, _NOREPLACE, _EXCHANGE = _renameat2(), 1, 2


def _rename_noreplace(a: Path, b: Path) -> bool:
    """Rename ``a`` to ``b`` unless something is there (False); without ``renameat2``, looked at first."""
    if _RENAMEAT2 is not None:
        err = _RENAMEAT2(a, b, _NOREPLACE)
        if err in (0, errno.EEXIST, errno.ENOTEMPTY):
            return err == 0
        if err not in (errno.EINVAL, errno.ENOSYS):  # those: a file system without the flag
            raise OSError(err, os.strerror(err), str(a))
    if os.path.lexists(b):
        return False
    os.rename(a, b)
    return True


@contextmanager
def atomic_folder(folder: Path, allowed: tuple[str, ...]) -> Iterator[Path]:
    """Yield a new, empty folder beside ``folder``; on success it takes ``folder``'s place as a
    whole (swapped in one step where Linux allows, else two renames), on failure it is removed, so
    ``folder`` holds either all of the old files or all of the new.

    Args:
        allowed: the names the old folder may hold; one holding anything else (a user's own files)
            is refused with `SnnpipeError` rather than replaced. What another command puts there
            while the new folder is written is moved into the new one (`_hand_back`), never lost.
    """
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise SnnpipeError(f"{folder} is not a folder of its own; choose another --out")
    if folder.is_dir():
        others = sorted(entry.name for entry in folder.iterdir() if entry.name not in allowed and not _snnpipes(entry))
        if others:
            raise SnnpipeError(f"{folder} holds other files ({', '.join(others[:3])}); give the report a folder of its own with --out")
    folder.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=_temporary_prefix(folder), dir=folder.parent))
    try:
        yield new
        os.chmod(new, 0o777 & ~_umask())  # mkdtemp's 0700 is for while it is being written
        if _rename_noreplace(new, folder):
            return
        if _RENAMEAT2 is not None and _RENAMEAT2(new, folder, _EXCHANGE) == 0:
            _hand_back(new, folder, allowed)  # ``new`` is now the old folder
        else:
            old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(folder), dir=folder.parent))
            os.rename(folder, old / folder.name)
            os.rename(new, folder)
            _hand_back(old / folder.name, folder, allowed)
            old.rmdir()
    finally:
        if new.exists():
            shutil.rmtree(new, ignore_errors=True)


def _hand_back(old: Path, folder: Path, allowed: tuple[str, ...]) -> None:
    """Remove the replaced folder ``old``: its ``allowed`` entries (the old report) are deleted,
    every other one (what another command wrote there while the new one was being written) is
    moved into ``folder``, then ``old`` is removed with ``rmdir``, which fails while anything new
    is in it (then the round repeats): nothing in it is deleted that is not an old report file.
    An entry whose name is taken in ``folder`` meanwhile stays in ``old``, renamed to
    ``<folder>.kept-<pid>`` beside it (never taken for a temporary)."""
    while True:
        kept = False
        for entry in old.iterdir():
            if entry.name in allowed:
                _remove([entry])
            elif not _rename_noreplace(entry, folder / entry.name):
                kept = True
        if kept:
            os.rename(old, folder.with_name(f"{folder.name}.kept-{os.getpid()}"))
            return
        try:
            old.rmdir()
            return
        except OSError as err:
            if err.errno != errno.ENOTEMPTY:
                raise
