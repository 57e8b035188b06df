"""A run directory is self-contained: moved, copied or archived, it opens and resumes where
it now is, and a copy never writes into the original (nasforge.runs)."""
from __future__ import annotations

import json
import shutil

from conftest import SHARED_DATA, cli

TABLE = SHARED_DATA / "nb201_12epoch.csv"


def search(out, budget: int):
    r = cli("search", "--benchmark", "nb201", "--bench-file", TABLE, "--budget", budget, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr


def trials(out):
    r = cli("show", out, "--json")
    assert r.returncode == 0, r.stderr
    return [(t["number"], t["genome"], t["fitness"]) for t in json.loads(r.stdout)]


def test_run_json_names_no_path_of_its_own_database(tmp_path):
    search(tmp_path / "run", 3)
    assert json.loads((tmp_path / "run" / "run.json").read_text()) == {"study": "run"}


def test_a_moved_run_opens_and_resumes_where_it_is(tmp_path):
    search(tmp_path / "here", 6)
    before = trials(tmp_path / "here")
    (tmp_path / "here").rename(tmp_path / "there")
    assert trials(tmp_path / "there") == before
    assert cli("resume", tmp_path / "there", "--budget", 9, "--quiet").returncode == 0
    assert trials(tmp_path / "there")[:6] == before and len(trials(tmp_path / "there")) == 9


def test_a_copy_is_a_new_run_that_leaves_the_original_alone(tmp_path):
    search(tmp_path / "original", 5)
    before = trials(tmp_path / "original")
    shutil.copytree(tmp_path / "original", tmp_path / "copy")
    assert cli("resume", tmp_path / "copy", "--budget", 8, "--quiet").returncode == 0
    assert trials(tmp_path / "original") == before
    assert trials(tmp_path / "copy")[:5] == before and len(trials(tmp_path / "copy")) == 8


def test_an_older_run_json_with_the_absolute_path_of_a_moved_run_still_opens(tmp_path):
    search(tmp_path / "old", 4)
    before = trials(tmp_path / "old")
    (tmp_path / "old" / "run.json").write_text(json.dumps({"storage": "sqlite:////gone/elsewhere/study.db",
                                                           "study": "old"}))
    assert trials(tmp_path / "old") == before


def test_a_missing_database_is_an_error_not_a_new_empty_run(tmp_path):
    search(tmp_path / "run", 3)
    (tmp_path / "run" / "study.db").unlink()
    r = cli("show", tmp_path / "run")
    assert r.returncode == 2 and "database" in r.stderr and "missing" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "run" / "study.db").exists()


def test_a_damaged_run_json_is_one_line(tmp_path):
    search(tmp_path / "run", 2)
    (tmp_path / "run" / "run.json").write_text("{not json")
    r = cli("show", tmp_path / "run")
    assert r.returncode == 2 and "run.json is damaged" in r.stderr and r.stderr.count("\n") == 1


def test_raising_the_budget_continues_the_same_search(tmp_path):
    """The default population follows the budget (budget/4: 5 at 20, 10 at 40); a resumed run keeps
    the one it started with, so its first trials replay and it goes on."""
    search(tmp_path / "grow", 20)
    before = trials(tmp_path / "grow")
    r = cli("resume", tmp_path / "grow", "--budget", 40, "--quiet")
    assert r.returncode == 0, r.stderr
    after = trials(tmp_path / "grow")
    finished = [t for t in json.loads(cli("show", tmp_path / "grow", "--json").stdout) if t["repeat_of"] is None]
    assert after[:len(before)] == before and len(finished) == 40  # repeats of known cells cost no budget
    assert cli("resume", tmp_path / "grow", "--quiet").returncode == 0  # and a plain resume after it
    assert trials(tmp_path / "grow") == after


def test_a_second_process_on_a_run_is_told_which_process_holds_it(tmp_path):
    import os
    import subprocess

    from conftest import nasforge_cmd

    search(tmp_path / "run", 2)
    holder = subprocess.Popen([*nasforge_cmd(), "resume", str(tmp_path / "run"), "--budget", "100000", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "run" / ".lock"
        for _ in range(200):  # until the first process has taken the lock
            if lock.is_file() and lock.read_text().strip() == str(holder.pid):
                break
            import time

            time.sleep(0.05)
        r = cli("resume", tmp_path / "run", "--quiet")
        assert r.returncode == 2 and f"another nasforge process (pid {holder.pid})" in r.stderr
    finally:
        holder.kill()
        holder.wait()
    assert os.path.exists(lock)


def test_out_naming_a_file_is_one_line(tmp_path):
    (tmp_path / "taken").write_text("not a directory")
    r = cli("search", "--benchmark", "nb201", "--bench-file", TABLE, "--budget", 2, "--out", tmp_path / "taken")
    assert r.returncode == 2 and "cannot make the run directory" in r.stderr and r.stderr.count("\n") == 1
