"""Reading or writing a file in a forked child, for the HDF5 readers and writers (NIR, netx).

The HDF5 library loops forever or crashes the process on some damaged files (a flipped byte in a
global heap, found by fuzzing the NIR reader: tests/test_nir_fuzz.py); neither may take snnpipe with
it, and nor may a write onto a nearly full disk, which has crashed h5py too. `in_child` runs the
reader (or writer) in a child process, sends its result or exception back through a
pipe, and turns a crash or a run past the timeout into the caller's one-line error.
"""

from __future__ import annotations

import ctypes
import faulthandler
import os
import pickle
import re
import select
import signal
import threading
import time
import warnings
from typing import Any, Callable


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:160] if text else type(err).__name__


def _hold_sigterm() -> Callable[[], None]:
    """Note SIGTERM instead of handling it, until the function returned is called (then a noted one
    is raised again): a handler that raises (snnpipe's CLI stops on SIGTERM) must not raise between
    the fork and the ``try`` that reaps the child, nor inside the fork's own hooks, where Python
    drops the exception. (Blocking the signal would not do: the mask is per thread, and one of
    torch's threads would take it.)"""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    noted: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: noted.append(signum))

    def release() -> None:
        signal.signal(signal.SIGTERM, previous)
        if noted:
            signal.raise_signal(signal.SIGTERM)

    return release


def _die_with(parent: int) -> None:
    """End this child when ``parent`` ends, even by SIGKILL (Linux's ``PR_SET_PDEATHSIG``): it holds
    the parent's descriptors, its output's lock among them, and would keep that lock until its own
    work was done, refusing the user's next try."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the child finishes its file, then ends
    if os.getppid() != parent:  # the parent ended before the call above
        os._exit(0)


def in_child(function: Callable[..., Any], *args: Any, timeout: float, failure: Callable[[str], Exception],
             doing: str = "reading") -> Any:
    """``function(*args)`` in a forked child: its result, or its exception raised here.

    Where the child crashes or runs past ``timeout`` seconds, ``failure(reason)`` is raised, reason
    being "reading it did not finish in 60 s" or "reading it crashed the HDF5 library (signal 11)"
    ("writing" for ``doing="writing"``); so it is where a writer fails with anything but an
    `OSError` (h5py's RuntimeError onto a full disk), reason being the system's text of the errno
    its message names ("errno = 28": "No space left on device").
    Without ``os.fork`` (Windows) the function runs in this process.
    """
    if not hasattr(os, "fork"):
        return function(*args)
    read_end, write_end = os.pipe()
    release_sigterm = _hold_sigterm()
    parent = os.getpid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ on fork with threads: the child uses none
        pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _die_with(parent)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler
            faulthandler.disable()  # a crash is reported by the parent, without a Python traceback
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            try:
                outcome: tuple[bool, Any] = (True, function(*args))
            except BaseException as err:  # noqa: BLE001 - raised again in the parent
                outcome = (False, err)
            try:
                data = pickle.dumps(outcome)
            except Exception as err:  # noqa: BLE001 - an unpicklable result: its text instead
                data = pickle.dumps((False, RuntimeError(f"{outcome[1]!r} cannot be sent back ({_first_line(err)})")))
            with os.fdopen(write_end, "wb") as sink:
                sink.write(data)
        finally:
            os._exit(0)
    chunks: list[bytes] = []
    finished = False
    try:
        os.close(write_end)
        release_sigterm()  # a SIGTERM since the fork is handled now, where the child is reaped whatever it raises
        deadline = time.monotonic() + timeout
        while not finished:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([read_end], [], [], left)[0]:
                raise failure(f"{doing} it did not finish in {timeout:g} s")
            chunk = os.read(read_end, 1 << 20)
            chunks.append(chunk)
            finished = not chunk
    finally:
        os.close(read_end)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) or len(chunks) == 1:
        reason = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit status {os.WEXITSTATUS(status)}"
        raise failure(f"{doing} it crashed the HDF5 library ({reason})")
    ok, value = pickle.loads(b"".join(chunks))
    if ok:
        return value
    if doing == "writing" and not isinstance(value, OSError):  # h5py's failed flush: a RuntimeError naming the errno
        found = re.search(r"errno = (\d+)", str(value))
        raise failure(os.strerror(int(found[1])) if found else _first_line(value))
    raise value
