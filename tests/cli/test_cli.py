import json
import sqlite3
import subprocess
import sys

import pytest
from conftest import cli, kill_after, nasforge_cmd

FAST = ["--epochs", "4", "--patience", "0", "--max-layers", "2", "--max-units", "32"]


@pytest.mark.slow
def test_search_writes_sqlite_and_show_lists_trials(tmp_path):
    out = tmp_path / "digits"
    r = cli("search", "--dataset", "digits", "--strategy", "evolution", "--budget", 6, "--seed", 0, "--out", out, *FAST)
    assert r.returncode == 0, r.stderr
    assert "best: trial" in r.stdout and "test accuracy" in r.stdout
    with sqlite3.connect(out / "study.db") as db:
        states = [s for (s,) in db.execute("select state from trials")]
    assert states == ["COMPLETE"] * 6
    shown = cli("show", out)
    assert shown.returncode == 0 and "*best*" in shown.stdout
    trials = json.loads(cli("show", out, "--json").stdout)
    assert len(trials) == 6 and {"val_acc", "test_acc", "test_f1", "params", "flops", "latency_ms",
                                 "train_seconds"} <= set(trials[0]["metrics"])


@pytest.mark.slow
def test_sigkill_mid_search_then_resume_loses_and_repeats_nothing(tmp_path):
    out = tmp_path / "killed"
    args = ["search", "--dataset", "wdbc", "--budget", 10, "--seed", 3, "--out", out, "--jsonl", *FAST]
    lines = kill_after(args, 4)
    assert len(lines) == 4
    r = cli("resume", out, "--quiet")
    assert r.returncode == 0, r.stderr
    trials = json.loads(cli("show", out, "--json").stdout)
    finished = [t for t in trials if t["state"] in ("complete", "failed") and not t["interrupted"]]
    assert len(finished) == 10
    assert not [t for t in trials if t["state"] == "running"]
    asks = [t["ask_index"] for t in finished]
    assert sorted(asks) == list(range(10))  # every ask evaluated exactly once
    # the first four results survived the kill unchanged
    before = {line["trial"]: line["fitness"] for line in lines}
    assert all(next(t for t in trials if t["number"] == n)["fitness"] == f for n, f in before.items())
    # and the whole run equals an uninterrupted one with the same settings
    ref = tmp_path / "ref"
    assert cli("search", "--dataset", "wdbc", "--budget", 10, "--seed", 3, "--out", ref, "--quiet", *FAST).returncode == 0
    ref_trials = json.loads(cli("show", ref, "--json").stdout)
    def key(ts):
        return sorted((t["ask_index"], json.dumps(t["genome"], sort_keys=True), t["fitness"])
                                for t in ts if t["state"] == "complete" and not t["interrupted"])
    assert key(trials) == key(ref_trials)


@pytest.mark.parametrize("args,needle", [
    (["search", "--dataset", "nope"], "unknown dataset"),
    (["search", "--budget", "0"], "budget"),
    (["search", "--budget", "-3"], "budget"),
    (["search", "--strategy", "annealing"], "unknown strategy"),
    (["search", "--csv", "/no/such.csv", "--target", "y"], "not found"),
    (["search", "--csv", "DATA", "--target", "nope"], "target column"),
    (["search", "--lr", "-1"], "train.lr"),
    (["search", "--weights", "speed=1"], "--weights"),
    (["show", "/no/such/run"], "no nasforge run"),
    (["search", "--frobnicate"], "unrecognized"),
    (["search", "--dataset", "iris", "--strategy", "bilevel", "--space", "net"], "evolves MLPs"),
    (["search", "--dataset", "iris", "--strategy", "expert", "--space", "cells"], "needs images"),
    (["search", "--dataset", "digits-images", "--strategy", "expert", "--space", "cells"], "edits 'net' and 'mlp'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n1,2,x\n3,4,z\n5,6,x\n")
    args = [str(data) if a == "DATA" else a for a in args]
    r = cli(*args, "--out", tmp_path / "o") if args[0] == "search" else cli(*args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and needle in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # nothing written for a run that never started


def test_datasets_lists_builtins():
    r = cli("datasets")
    assert r.returncode == 0 and all(n in r.stdout for n in ("digits", "wdbc", "iris", "wine"))


def test_help_datasets_and_show_start_without_torch_or_scikit_learn(tmp_path):
    """The CLI imports the heavy libraries inside the commands that train (benchmarks/cli_startup.py times it)."""
    from conftest import SHARED_DATA

    run = tmp_path / "nb"
    r = cli("search", "--benchmark", "nb201", "--bench-file", SHARED_DATA / "nb201_12epoch.csv", "--budget", 3,
            "--out", run, "--quiet")
    assert r.returncode == 0, r.stderr
    probe = ("import sys, contextlib, io\nfrom nasforge.cli import main\n"
             "for argv in (['--help'], ['search', '--help'], ['resume', '--help'], ['datasets'], ['show', sys.argv[1]]):\n"
             "    with contextlib.redirect_stdout(io.StringIO()):\n"
             "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
             "print(sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe, str(run)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_an_internal_error_is_one_line_exit_3_and_a_log_with_the_traceback(tmp_path, monkeypatch, capsys):
    import nasforge.cli as nf_cli

    def broken(args):
        raise ZeroDivisionError("a bug deep inside")

    monkeypatch.setenv("NASFORGE_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setitem(nf_cli.COMMANDS, "datasets", broken)
    assert nf_cli.main(["datasets"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (ZeroDivisionError: a bug deep inside)" in err
    logs = list((tmp_path / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err
    text = logs[0].read_text()
    assert "Traceback" in text and "in broken" in text and "ZeroDivisionError: a bug deep inside" in text


def test_show_into_a_closed_pipe_ends_quietly(tmp_path):
    from conftest import SHARED_DATA

    run = tmp_path / "nb"  # 300 trials: their JSON (~180 kB) is more than a pipe holds
    assert cli("search", "--benchmark", "nb201", "--bench-file", SHARED_DATA / "nb201_12epoch.csv", "--budget", 300,
               "--out", run, "--quiet").returncode == 0
    shell = f"set -o pipefail; {' '.join(nasforge_cmd())} show {run} --json | head -1"
    r = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert r.stderr == "" and r.stdout.count("\n") == 1 and r.returncode == 141


def test_without_a_terminal_progress_is_one_plain_line_per_trial(tmp_path):
    from conftest import SHARED_DATA

    r = cli("search", "--benchmark", "nb201", "--bench-file", SHARED_DATA / "nb201_12epoch.csv", "--budget", 5,
            "--out", tmp_path / "nb")  # stderr is a pipe here, as in a log file or CI
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("trial ")]
    assert [line.split(" (")[1].split(")")[0] for line in lines] == [f"{i}/5" for i in range(1, 6)]
    assert all("fitness" in line and "best" in line for line in lines) and "━" not in r.stderr


def test_the_api_reports_progress_when_asked(tmp_path, capsys):
    from conftest import SHARED_DATA

    import nasforge

    nasforge.search(budget=3, out=tmp_path / "nb", progress="lines",
                    benchmark={"file": str(SHARED_DATA / "nb201_12epoch.csv")})
    assert capsys.readouterr().err.count("trial ") == 3
