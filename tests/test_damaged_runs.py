"""Runs in a bad state: read-only, damaged, or on a disk that fills up (issue #21, items 6, 9, 10).

Read-only commands never write; a damaged run says what is wrong and what can still be done,
in one line and exit 2, never a traceback; a full disk ends a search with one line and a run
that resumes once there is space, nothing finished lost. The read-only mount and the small
file system need root and a kernel that lets this machine mount; where it does not, those
two tests are skipped and the simulated full disk (a failing writer) still runs.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import nasforge
from nasforge import files
from nasforge.cli import main

SEARCH = ["search", "--dataset", "iris", "--budget", "8", "--quiet", "--seed", "3"]
QUIET_RUN = {"dataset": "iris", "budget": 8, "seed": 3}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One small real run, copied by each test that damages it."""
    out = tmp_path_factory.mktemp("runs") / "iris"
    nasforge.search(out=out, **QUIET_RUN)
    return out


def copy_of(run: Path, where: Path) -> Path:
    target = where / "run"
    shutil.copytree(run, target)
    return target


def nasforge_says(capsys, *args) -> tuple[int, str]:
    """Run the CLI in this process; its exit status and what it wrote on stderr."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


def snapshot(run: Path) -> dict[str, str]:
    """Every file of the run and its content hash (SQLite's own -wal/-shm and the lock aside)."""
    return {str(p.relative_to(run)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and not p.name.endswith(("-wal", "-shm", ".lock"))}


def trials(run: Path) -> list[tuple]:
    """What a run holds, compared between runs: the finished trials, in order."""
    return [(t.number, t.genome, t.fitness) for t in nasforge.open_run(run).trials if t.finished]


def test_reading_a_run_changes_no_byte_of_it(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    before = snapshot(run)
    assert nasforge_says(capsys, "show", run)[0] == 0
    assert nasforge_says(capsys, "show", run, "--json")[0] == 0
    assert nasforge_says(capsys, "report", run, "--output", tmp_path / "elsewhere" / "report.html")[0] == 0
    assert nasforge_says(capsys, "export", run, "--format", "onnx", "--output", tmp_path / "exported")[0] == 0
    nasforge.load_model(run).predict(nasforge.load_task("iris", seed=3).X_test[:3].numpy())
    assert snapshot(run) == before


def mounted(*args: str) -> bool:
    return os.geteuid() == 0 and subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextmanager
def read_only_view(source: Path, where: Path) -> Iterator[Path]:
    """``source`` bind-mounted read-only at ``where / "read-only"`` (skips where not allowed)."""
    view = where / "read-only"
    view.mkdir()
    if not (mounted("--bind", str(source), str(view)) and mounted("-o", "remount,ro,bind", str(view))):
        subprocess.run(["umount", "-l", str(view)], capture_output=True)
        pytest.skip("this machine does not let the tests mount a read-only view (needs root and mount rights)")
    try:
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


def test_a_run_on_a_read_only_mount_can_be_read_but_not_written(finished, tmp_path, capsys):
    with read_only_view(copy_of(finished, tmp_path), tmp_path) as view:
        code, err = nasforge_says(capsys, "show", view)
        assert code == 0, err
        assert nasforge_says(capsys, "report", view, "--output", tmp_path / "report.html")[0] == 0
        assert nasforge_says(capsys, "export", view, "--format", "onnx", "--output", tmp_path / "exported")[0] == 0
        assert (tmp_path / "exported" / "model.onnx").is_file()
        assert nasforge.load_model(view).genome is not None
        one_line_error(*nasforge_says(capsys, "report", view), "read-only file system", "--output")
        one_line_error(*nasforge_says(capsys, "train", view), "read-only")
        one_line_error(*nasforge_says(capsys, "resume", view, "--budget", 9), "cannot write")


def test_a_read_only_run_shows_the_trials_still_in_its_write_ahead_log(finished, tmp_path):
    """A run copied while a search held it open keeps its last commits in study.db-wal;
    reading it where nothing may be written must still see them."""
    source = copy_of(finished, tmp_path)
    held = sqlite3.connect(source / "study.db")
    held.execute("PRAGMA wal_autocheckpoint=0")
    held.execute("UPDATE trial_values SET value = 0.123 WHERE trial_id = (SELECT MIN(trial_id) FROM trial_values)")
    held.commit()
    snapshot = tmp_path / "snapshot"
    shutil.copytree(source, snapshot)  # while the write is only in the log
    held.close()
    assert (snapshot / "study.db-wal").stat().st_size > 0
    with read_only_view(snapshot, tmp_path) as view:
        assert 0.123 in [t.fitness for t in nasforge.open_run(view).trials]


def test_a_truncated_database_says_what_is_left(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    with open(run / "study.db", "r+b") as db:
        db.truncate(20_000)
    for command in (["show", run], ["report", run, "--output", tmp_path / "r.html"], ["resume", run],
                    ["export", run, "--format", "onnx", "--output", tmp_path / "x"]):
        one_line_error(*nasforge_says(capsys, *command), "cannot be read", "best", "copy of study.db")


def test_an_edited_run_json_names_the_runs_the_database_holds(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    (run / "run.json").write_text('{"study": "renamed"}')
    one_line_error(*nasforge_says(capsys, "show", run), "'renamed'", "'iris'")


def test_missing_weights_point_to_retraining(finished, tmp_path, capsys):
    run = copy_of(finished, tmp_path)
    best = nasforge.open_run(run).best.number
    (run / "models" / f"trial-{best:05d}.pt").unlink()
    one_line_error(*nasforge_says(capsys, "export", run, "--format", "onnx", "--output", tmp_path / "x"),
                   "missing", f"--trial {best}")
    assert nasforge_says(capsys, "show", run)[0] == 0  # the trials themselves are all there


@pytest.mark.parametrize("damage", ["garbage", "deleted"])
def test_a_damaged_task_file_is_one_line_and_resume_writes_it_again(finished, tmp_path, capsys, damage):
    run = copy_of(finished, tmp_path)
    if damage == "garbage":
        (run / "task.pkl").write_bytes(b"garbage\n")
    else:
        (run / "task.pkl").unlink()
    one_line_error(*nasforge_says(capsys, "export", run, "--format", "onnx", "--output", tmp_path / "x"),
                   "task.pkl", "nasforge resume")
    with pytest.raises(nasforge.NasforgeError, match="task.pkl"):
        nasforge.load_model(run)
    assert nasforge_says(capsys, "resume", run)[0] == 0
    assert nasforge.load_model(run).genome is not None


def test_a_disk_that_fills_up_mid_search_loses_nothing_finished(finished, tmp_path, capsys, monkeypatch):
    real, calls = files.write_bytes, []

    def full_after_three(path, data):
        calls.append(path)
        if len(calls) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(files, "write_bytes", full_after_three)
    out = tmp_path / "run"
    one_line_error(*nasforge_says(capsys, *SEARCH, "--out", out), "no space left on device", "nasforge resume")
    assert not list(out.rglob("*.tmp"))
    kept = trials(out)
    assert 0 < len(kept) < 8
    monkeypatch.setattr(files, "write_bytes", real)  # space is back
    assert nasforge_says(capsys, "resume", out)[0] == 0
    assert trials(out)[:len(kept)] == kept
    assert [t[1:] for t in trials(out)] == [t[1:] for t in trials(finished)]


def test_a_real_full_file_system(finished, tmp_path, capsys):
    disk = tmp_path / "disk"
    disk.mkdir()
    if not mounted("-t", "tmpfs", "-o", "size=500k", "tmpfs", str(disk)):
        pytest.skip("this machine does not let the tests mount a small file system (needs root and mount rights)")
    try:
        code, err = nasforge_says(capsys, *SEARCH, "--out", disk / "run")
        one_line_error(code, err, "full" if "database" in err else "no space left")
        kept = trials(disk / "run")
        assert len(kept) < 8
        assert mounted("-o", "remount,size=20m", str(disk))
        assert nasforge_says(capsys, "resume", disk / "run")[0] == 0
        assert trials(disk / "run")[:len(kept)] == kept
        assert [t[1:] for t in trials(disk / "run")] == [t[1:] for t in trials(finished)]
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.pt"
    files.write_bytes(target, b"good")
    with pytest.raises(RuntimeError), files.replacing(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_a_set_of_files_cut_off_mid_write_lacks_its_last_file(tmp_path, monkeypatch):
    files.write_together(tmp_path, {"model.pt": b"old model", "genome.json": b"old", "metrics.json": b"old"})
    real = files.write_bytes

    def killed_at_the_genome(path, data):
        if path.name == "genome.json":
            raise KeyboardInterrupt  # stands for a kill between the model and its genome
        real(path, data)

    monkeypatch.setattr(files, "write_bytes", killed_at_the_genome)
    with pytest.raises(KeyboardInterrupt):
        files.write_together(tmp_path, {"model.pt": b"new model", "genome.json": b"new", "metrics.json": b"new"})
    assert not (tmp_path / "metrics.json").exists()  # so no reader pairs the new model with the old genome
