"""What a command writes, under pressure: two commands writing one output, a disk that fills between
a file and its report, SIGTERM mid-write, the umask, two first uses of the Lava environment at once,
and `.ci/run`'s own temporary folders. Concurrency and signals with real processes."""

import errno
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from snnpipe.files import TEMP_MARK
from snnpipe.pipeline.cli import cli
from snnpipe.pipeline.report import FILES
from snnpipe.pipeline.config import TrainConfig
from snnpipe.pipeline.train import train

REPO = Path(__file__).resolve().parents[1]
SNNPIPE = [sys.executable, "-m", "snnpipe"]  # this interpreter's snnpipe, not whichever is first on PATH
TARGETS = {"loihi": ["--max-drop", "100"], "onnx": [], "nir": []}  # a 1-epoch model: Loihi's drop allowed


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    return train(TrainConfig(model_args={"hidden": (16,)}, epochs=1, encoding="rate", out=str(out)), progress=False)


def _export_args(ckpt, target: str, out: Path, *extra: str) -> list[str]:
    return ["export", str(ckpt.path), "--target", target, "-o", str(out), "--quiet", *TARGETS[target], *extra]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*SNNPIPE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(folder: Path, pattern: str, proc: subprocess.Popen, seconds: float = 120) -> bool:
    """Poll until a name matching ``pattern`` appears in ``folder`` (while ``proc`` runs)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if folder.is_dir() and list(folder.glob(pattern)):
            return True
        time.sleep(0.003)
    return False


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


# -- 15: two writers of one output ---------------------------------------------------------------

@pytest.mark.parametrize("command", ["profile", "export"])
def test_a_second_command_writing_the_same_output_is_refused_and_the_first_finishes(tmp_path, checkpoint, command):
    if command == "profile":
        out, temporary = tmp_path / "R", f".R{TEMP_MARK}*"
        first_args = ["profile", str(checkpoint.path), "--samples", "20", "-o", str(out)]
        second_args = ["profile", str(checkpoint.path), "--samples", "10", "-o", str(out)]
    else:
        out, temporary = tmp_path / "m.nir", f".m.nir{TEMP_MARK}*"
        first_args = _export_args(checkpoint, "nir", out)
        second_args = _export_args(checkpoint, "nir", out, "--samples", "10")
    first = _start(first_args)
    try:
        assert _wait_for(tmp_path, temporary, first), first.communicate()
        first.send_signal(signal.SIGSTOP)  # A holds the output, midway through writing it
        second = subprocess.run([*SNNPIPE, *second_args], capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=300)
    assert second.returncode == 2, (second.returncode, second.stderr)
    line = _one_line(second.stderr)
    assert f"another snnpipe command (process {first.pid}) is writing {out}" in line and "wait for it" in line
    assert first.returncode == 0, first_err
    if command == "profile":  # A's report, whole
        assert json.loads((out / "profile.json").read_text())["samples"] == 20
        assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]  # no temporary, no lock left
    else:
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nir", "m.nir.report.json"]



def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] == "T"


#: Runs the CLI with its arguments after the first; stops itself (SIGSTOP) just before the finished
#: report folder takes the place of the folder named first: where another command's write meets it.
_PAUSE_BEFORE_SWAP = """
import os, signal, sys
from pathlib import Path
folder, chmod = Path(sys.argv[1]), os.chmod
def pause_first(path, mode, *args, **kwargs):
    path = Path(path)
    if path.is_dir() and path.parent == folder.parent and path.name.startswith(f".{folder.name}"):
        os.kill(os.getpid(), signal.SIGSTOP)
    return chmod(path, mode, *args, **kwargs)
os.chmod = pause_first
from snnpipe.pipeline.cli import cli
cli.main(sys.argv[2:], prog_name="snnpipe")
"""


def test_what_another_command_writes_into_a_report_folder_meanwhile_is_kept(tmp_path, checkpoint):
    folder = tmp_path / "D"
    profile = subprocess.Popen([sys.executable, "-c", _PAUSE_BEFORE_SWAP, str(folder), "profile", str(checkpoint.path),
                                "--samples", "20", "--out", str(folder)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not _stopped(profile.pid) and profile.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _stopped(profile.pid), profile.communicate()
        export = subprocess.run([*SNNPIPE, *_export_args(checkpoint, "onnx", folder / "x.onnx")], capture_output=True,
                                text=True, timeout=300)
        assert export.returncode == 0, export.stderr
        exported = {p.name: p.read_bytes() for p in folder.iterdir()}
    finally:
        profile.send_signal(signal.SIGCONT)
    _, err = profile.communicate(timeout=300)
    assert profile.returncode == 0, err
    assert {"x.onnx", "x.onnx.report.json"} <= exported.keys()
    assert {name: (folder / name).read_bytes() for name in exported} == exported  # the export's files, all kept
    assert sorted(p.name for p in folder.iterdir()) == sorted([*exported, *FILES])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D"]  # nothing left beside it



@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_swapped_in_folder_keeps_what_appeared_in_the_old_one(tmp_path, monkeypatch, exchange):
    from snnpipe import files

    if not exchange:
        monkeypatch.setattr(files, "_RENAMEAT2", None)
    folder = tmp_path / "D"
    folder.mkdir()
    (folder / "profile.json").write_text("old")
    with files.atomic_folder(folder, allowed=("profile.json",)) as new:
        (new / "profile.json").write_text("new")
        (folder / "x.onnx").write_text("another command's")  # after the check at the start
        (folder / "sub").mkdir()
        (folder / "sub" / "y").write_text("y")
    assert {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()} == {
        "profile.json": "new", "x.onnx": "another command's", "sub/y": "y"}
    assert [p.name for p in tmp_path.iterdir()] == ["D"]

def test_an_export_writing_the_onnx_twin_of_another_is_refused(tmp_path, checkpoint):
    """B writes F.ann.onnx, which A's export to F.onnx would write as its ANN twin: each file an
    export writes is claimed, so A is refused in one line and B's file stays B's."""
    first = _start(_export_args(checkpoint, "onnx", tmp_path / "F.ann.onnx"))
    try:
        assert _wait_for(tmp_path, ".F.ann.onnx.lock", first), first.communicate()
        first.send_signal(signal.SIGSTOP)  # B holds F.ann.onnx, midway
        second = subprocess.run([*SNNPIPE, *_export_args(checkpoint, "onnx", tmp_path / "F.onnx")],
                                capture_output=True, text=True, timeout=300)
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 2, (second.returncode, second.stderr)
    assert f"another snnpipe command (process {first.pid}) is writing {tmp_path / 'F.ann.onnx'}" in _one_line(second.stderr)
    report = json.loads((tmp_path / "F.ann.onnx.report.json").read_text())
    assert report["files"][0] == str(tmp_path / "F.ann.onnx") and "snn" in report  # B's SNN, not A's twin
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(  # nothing of A's, no lock left
        [Path(f).name for f in report["files"]] + ["F.ann.onnx.report.json"])

@pytest.mark.parametrize("target", list(TARGETS))
def test_an_export_over_its_own_input_is_refused_even_with_force(tmp_path, checkpoint, target):
    """`export c.pt --out c.pt --force` wrote the ONNX (or netx, NIR) file over the trained checkpoint;
    the same for a NIR file exported to NIR over itself, or an ONNX twin landing on the input."""
    source = tmp_path / "c.pt"
    source.write_bytes(checkpoint.path.read_bytes())
    nir_file = tmp_path / "n.nir"
    assert CliRunner().invoke(cli, _export_args(checkpoint, "nir", nir_file)).exit_code == 0
    cases = [(source, source), (nir_file, nir_file)] + ([(tmp_path / "c.ann.onnx", tmp_path / "c.onnx")]
                                                        if target == "onnx" else [])
    for given, out in cases:
        if given.suffix == ".onnx":  # a checkpoint that happens to be named as the twin would be
            given.write_bytes(checkpoint.path.read_bytes())
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        result = CliRunner().invoke(cli, ["export", str(given), "--target", target, "-o", str(out), "--force",
                                          *TARGETS[target]])
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        written = out if given == out else tmp_path / "c.ann.onnx"
        assert result.output == f"Error: {written} is this command's input; give the output another --out\n"
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


# -- 16: a full disk between a file and its report ------------------------------------------------

@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize("earlier", [False, True], ids=["new", "force-over-earlier"])
def test_an_export_whose_report_hits_a_full_disk_leaves_nothing_new(tmp_path, checkpoint, monkeypatch, target, earlier):
    out = tmp_path / f"m.{target}"
    before = {out.name: b"an earlier export", f"{out.name}.report.json": b"{}\n"} if earlier else {}
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the report is the last file: the disk fills just before it is saved
        if ".report.json" + TEMP_MARK in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    result = CliRunner().invoke(cli, _export_args(checkpoint, target, out, *(["--force"] if earlier else [])))
    assert result.exit_code == 2, result.output
    line = _one_line(result.output)
    assert "no space left" in line and "nothing was written there" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # all or nothing: the earlier export whole


@pytest.mark.parametrize("target", ["loihi", "nir"])
def test_h5py_failing_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, checkpoint, monkeypatch, target):
    """What h5py did onto a disk with 40-56 kB free: half a file, then a RuntimeError naming errno 28
    in its text (measured on a 1 MB tmpfs), in the forked child that writes the file."""
    from snnpipe.hw_targets import nir as nir_target
    from snnpipe.hw_targets.loihi import netx

    def full(*args):  # nir.write(path, graph), _write_netx(network, path, attrs)
        path = next(arg for arg in args if isinstance(arg, (str, Path)))
        Path(path).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(4096))
        raise RuntimeError(f"Disable slist on flush dest failure failed (file write failed: time = Mon Dec  7 "
                           f"05:54:23 2026\n, filename = '{path}', file descriptor = 5, errno = 28, error message = "
                           "'No space left on device', buf = 0x5562c2e08a6f, total write size = 16689)")

    if target == "nir":
        monkeypatch.setattr(nir_target.nir, "write", full)
    else:
        monkeypatch.setattr(netx, "_write_netx", full)
    result = CliRunner().invoke(cli, _export_args(checkpoint, target, tmp_path / "m"))
    assert result.exit_code == 2, result.output
    line = _one_line(result.output)
    assert "no space left" in line and "nothing was written there" in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("target, limit", [("loihi", 16_000), ("onnx", 12_000), ("nir", 30_000)])
def test_an_export_file_too_large_for_the_limit_is_one_line_and_leaves_nothing(tmp_path, checkpoint, target, limit):
    def limited() -> None:  # no file of the child may pass ``limit`` bytes (EFBIG), as a full disk stops it
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    done = subprocess.run([*SNNPIPE, *_export_args(checkpoint, target, tmp_path / "m")], capture_output=True,
                          text=True, preexec_fn=limited, timeout=300)
    assert done.returncode == 2, done.stderr
    line = _one_line(done.stderr)
    assert "File too large)" in line and "nothing was written there" in line, line
    assert list(tmp_path.iterdir()) == []


# -- 17: SIGTERM -----------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["export-nir", "export-onnx", "profile"])
def test_sigterm_mid_write_removes_what_it_was_writing_and_says_so(tmp_path, checkpoint, command):
    if command == "profile":
        args, watch = ["profile", str(checkpoint.path), "--samples", "20", "-o", str(tmp_path / "R")], f".R{TEMP_MARK}*"
    else:
        target = command.split("-")[1]
        args = _export_args(checkpoint, target, tmp_path / f"m.{target}")
        watch = f".m.{target}{TEMP_MARK}*" if target == "nir" else ".m.onnx.lock"  # ONNX's file: a moment only
    proc = _start(args)
    if _wait_for(tmp_path, watch, proc) and command == "export-onnx":
        time.sleep(0.2)  # into the export
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (proc.returncode, err)
    assert "stopped by SIGTERM" in _one_line(err)
    assert list(tmp_path.iterdir()) == []  # no temporary, no lock, no half report



#: Runs ``snnpipe`` with the arguments after the first, and stops itself (SIGSTOP) once the command
#: has ended: at its exit (``exit``), or as the interpreter tears its modules down (``teardown``).
_PAUSE_AFTER_THE_END = """
import os, signal, sys
where = sys.argv[1]
class Pause:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGSTOP)
if where == "exit":
    exit_ = sys.exit
    def exit_after_pause(code=None):
        Pause()
        exit_(code)
    sys.exit = exit_after_pause
else:
    pause = Pause()  # deleted with __main__'s names, late in the interpreter's teardown
sys.argv = ["snnpipe", *sys.argv[2:]]
from snnpipe.pipeline.cli import main
main()
"""


@pytest.mark.parametrize("where", ["exit", "teardown"])
def test_sigterm_after_the_output_is_complete_keeps_it_and_exits_with_its_code(tmp_path, checkpoint, where):
    folder = tmp_path / "R"
    proc = subprocess.Popen([sys.executable, "-c", _PAUSE_AFTER_THE_END, where, "profile", str(checkpoint.path),
                             "--samples", "20", "--quiet", "-o", str(folder)], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while proc.poll() is None and not _stopped(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _stopped(proc.pid), proc.communicate()
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, (proc.returncode, err)  # the command's own code: it had finished
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    if where == "exit":  # in the teardown, after Python's own exit hooks, it is ignored (no line)
        assert "snnpipe profile had already ended (exit 0) when SIGTERM came" in _one_line(err)


def test_an_error_a_library_makes_of_the_stop_is_the_stop(tmp_path, checkpoint, monkeypatch):
    """SIGTERM inside a module's import: onnxruntime wraps the handler's exception in an ImportError."""
    from snnpipe.files import atomic_path
    from snnpipe.pipeline import export as export_module

    def importing_onnxruntime(checkpoint, target, out, **_):
        with atomic_path(Path(out)) as tmp:
            tmp.write_text("half")
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here
            except BaseException as err:
                raise ImportError("initialization failed") from err

    monkeypatch.setattr(export_module, "export", importing_onnxruntime)
    result = CliRunner().invoke(cli, _export_args(checkpoint, "onnx", tmp_path / "m.onnx"))
    assert result.exit_code == 143, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "export stopped by SIGTERM" in lines[0] and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # its temporary removed

def test_a_later_export_removes_what_a_killed_one_left_of_its_file_only(tmp_path, checkpoint):
    out = tmp_path / "m.nir"
    proc = _start(_export_args(checkpoint, "nir", out))
    assert _wait_for(tmp_path, f".m.nir{TEMP_MARK}*", proc)
    proc.send_signal(signal.SIGKILL)  # no handler runs: its temporary stays
    proc.wait()
    assert list(tmp_path.glob(f".m.nir{TEMP_MARK}*"))
    others = [tmp_path / f".n.nir{TEMP_MARK}abcdefgh.nir", tmp_path / f".m.nir{TEMP_MARK}note"]  # not m.nir's
    for path in others:
        path.write_text("not this export's")
    assert CliRunner().invoke(cli, _export_args(checkpoint, "nir", out)).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.nir", "m.nir.report.json", *(p.name for p in others)])



def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"  # a zombie has ended
    except (FileNotFoundError, IndexError):
        return False


def test_the_writer_child_of_a_killed_command_ends_with_it(tmp_path):
    # the forked HDF5 writer holds its parent's output lock: outliving a SIGKILLed parent, it would make
    # the user's next try "another snnpipe command is writing" until it finished
    script = (f"import os, time\nfrom snnpipe.hw_targets.isolated import in_child\n"
              f"def work():\n    open({str(tmp_path / 'child')!r}, 'w').write(str(os.getpid()))\n    time.sleep(60)\n"
              f"in_child(work, timeout=120, failure=RuntimeError)\n")
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not (tmp_path / "child").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # the pid is written whole
    child = int((tmp_path / "child").read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(child):
        os.kill(child, signal.SIGKILL)
        pytest.fail("the writer child outlived its killed parent")


# -- 20: modes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_get_the_mode_the_umask_gives(tmp_path, checkpoint, umask):
    old = os.umask(umask)
    try:
        run = tmp_path / "run"
        assert CliRunner().invoke(cli, ["train", "--epochs", "1", "--model-arg", "hidden=[8]", "--train-samples", "64",
                                        "--test-samples", "32", "-o", str(run), "--quiet"]).exit_code == 0
        assert CliRunner().invoke(cli, _export_args(checkpoint, "onnx", tmp_path / "x" / "m.onnx")).exit_code == 0
        assert CliRunner().invoke(cli, ["profile", str(checkpoint.path), "--samples", "10", "-o",
                                        str(tmp_path / "R"), "--quiet"]).exit_code == 0
    finally:
        os.umask(old)
    paths = [run / "checkpoint.pt", run / "metrics.jsonl", *(tmp_path / "x").iterdir(), tmp_path / "R",
             *(tmp_path / "R").iterdir()]
    modes = {str(p.relative_to(tmp_path)): oct(p.stat().st_mode & 0o777) for p in paths}
    expected = {name: oct((0o777 if (tmp_path / name).is_dir() else 0o666) & ~umask) for name in modes}
    assert modes == expected


# -- 19: the Lava environment ---------------------------------------------------------------------

def test_two_first_uses_of_the_lava_environment_build_it_once(tmp_path):
    """A fake python3.10 on PATH whose ``-m venv DIR`` builds slowly (its folder first, its python
    last), logging each build; the environment's python passes every check. No Lava is built."""
    builds = tmp_path / "builds.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3.10"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = venv ]; then\n  mkdir -p "$3/bin"; echo $$ >> {builds}\n'
                    f'  sleep 3; cp {fake} "$3/bin/python"\nfi\nexit 0\n')
    fake.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYENV_ROOT": str(tmp_path / "no-pyenv")}
    env.pop("SNNPIPE_LAVA_PYTHON", None)
    code = "from snnpipe.hw_targets.loihi.lava_bridge import lava_python; print(lava_python())"
    first = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 60
    while not builds.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.01)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    out, err = first.communicate(timeout=120)
    env_dir = tmp_path / "home" / ".cache" / "snnpipe-lava"
    assert first.returncode == 0 and second.returncode == 0, (err, second.stderr)
    assert out.strip() == second.stdout.strip() == str(env_dir / "bin" / "python")
    assert len(builds.read_text().split()) == 1  # built once: the second waited and took it
    assert "waiting for another process" in second.stderr
    assert (env_dir / "bin" / "python").read_bytes() == fake.read_bytes()  # whole
    assert sorted(p.name for p in env_dir.parent.iterdir()) == ["snnpipe-lava"]  # no temporary, no lock



@pytest.mark.parametrize("python,reason", [("sleep 5", "did not answer in 0.5 s"),
                                           ("kill -9 $$", "was killed by signal 9")], ids=["slow", "killed"])
def test_a_lava_environment_that_cannot_be_checked_is_kept_not_rebuilt(tmp_path, monkeypatch, python, reason):
    # a check timing out or killed (the OOM killer) on a loaded machine is no broken environment: 5.6 GB
    # must not be deleted for it
    from snnpipe.hw_targets.loihi import lava_bridge

    env_dir = tmp_path / "home" / ".cache" / "snnpipe-lava"
    (env_dir / "bin").mkdir(parents=True)
    (env_dir / "bin" / "python").write_text(f"#!/bin/sh\n{python}\n")
    (env_dir / "bin" / "python").chmod(0o755)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SNNPIPE_LAVA_PYTHON", raising=False)
    monkeypatch.setattr(lava_bridge, "CHECK_SECONDS", 0.5, raising=False)
    monkeypatch.setattr(lava_bridge, "find_python310", lambda: (Path(sys.executable), []))
    monkeypatch.setattr(lava_bridge, "create_env", lambda *a: pytest.fail("a working environment was rebuilt"))
    with pytest.raises(lava_bridge.LavaUnavailableError, match=reason):
        lava_bridge.lava_python()
    assert (env_dir / "bin" / "python").read_text() == f"#!/bin/sh\n{python}\n"

# -- 25: .ci/run ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fails", [False, True], ids=["passes", "fails"])
def test_ci_run_removes_its_temporary_folders(tmp_path, fails):
    """`.ci/run` with stand-ins for python, snnpipe and apt-get (each exits 0, python 1 for the
    Lemaire test where ``fails``): what it makes with mktemp is gone when it ends, however it ends."""
    bin_dir, temp = tmp_path / "bin", tmp_path / "tmp"
    bin_dir.mkdir()
    temp.mkdir()
    python = 'case "$*" in *test_spikingjelly_lemaire*) exit 1;; esac\n' if fails else ""
    for name, body in (("python", python), ("snnpipe", ""), ("apt-get", "")):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}exit 0\n")
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin", "TMPDIR": str(temp)}
    done = subprocess.run(["bash", str(REPO / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == (1 if fails else 0), done.stderr
    assert list(temp.iterdir()) == []
