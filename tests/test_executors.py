"""Parallel evaluation: local worker processes and a real Ray cluster on loopback."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import nasforge_cmd

from nasforge.config import build_config
from nasforge.study import create_study

FAST = {"space": {"max_layers": 2, "max_units": 32}}


def cfg(budget, workers=1, epochs=4, retries=1, **kw):
    return build_config({"data": {"dataset": "digits"}, "budget": budget, "seed": 0, **FAST,
                         "train": {"epochs": epochs, "patience": 0},
                         "executor": {"workers": workers, "retries": retries}, **kw})


def run(out, config, callback=None):
    study = create_study(out, config)
    try:
        study.run(callback)
        return study.trials()
    finally:
        study.close()


def finished(trials):
    return [t for t in trials if t.finished]


@pytest.mark.slow
def test_two_worker_processes_finish_the_budget_and_resume(tmp_path):
    trials = run(tmp_path / "r", cfg(6, workers=2))
    assert len(finished(trials)) == 6 and all(t.state == "complete" for t in trials)
    assert sorted(t.ask_index for t in trials) == list(range(6))
    assert sorted(t.told_seq for t in trials) == list(range(6))
    # asynchronous evolution: some asks were issued before earlier results came back
    assert any(t.asked_after < t.ask_index for t in trials)
    more = run(tmp_path / "r", cfg(9, workers=2))  # replay of an asynchronous history, then more
    assert len(finished(more)) == 9 and [t.number for t in more] == list(range(9))


def _worker_leaves():
    """Our evaluation workers: the live children of the forkserver this process started."""
    workers = []
    for child in psutil.Process().children():
        try:
            if "forkserver" in " ".join(child.cmdline()):
                workers += [w for w in child.children() if w.status() != psutil.STATUS_ZOMBIE]
        except psutil.Error:
            continue
    return workers


@pytest.mark.slow
@pytest.mark.parametrize("retries", [0, 1])
def test_killed_worker_is_retried_or_recorded_and_the_search_completes(tmp_path, retries):
    killed = []

    def killer():
        deadline = time.time() + 60
        while time.time() < deadline and not killed:
            leaves = _worker_leaves()
            if len(leaves) >= 2:
                time.sleep(0.5)  # let an evaluation get going
                leaves[0].send_signal(signal.SIGKILL)
                killed.append(leaves[0].pid)
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    trials = run(tmp_path / "r", cfg(4, workers=2, epochs=60, retries=retries))
    thread.join(timeout=5)
    assert killed, "no worker process was found to kill"
    assert len(finished(trials)) == 4 and not [t for t in trials if t.state == "running"]
    died = [t for t in trials if t.error and "died" in t.error]
    if retries == 0:
        assert died and all("after 1 attempts" in t.error for t in died)
    else:
        assert not died and all(t.state == "complete" for t in trials)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resume_picks_up(tmp_path):
    out = tmp_path / "r"
    args = ["search", "--dataset", "digits", "--budget", 8, "--workers", 2, "--epochs", 12, "--patience", 0,
            "--max-layers", 2, "--out", out, "--jsonl"]
    proc = subprocess.Popen([*nasforge_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    line = ""
    deadline = time.time() + 120
    while not line.startswith("{") and time.time() < deadline:
        line = proc.stdout.readline()
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "nasforge resume" in err and "Traceback" not in err
    listed = json.loads(subprocess.run([*nasforge_cmd(), "show", str(out), "--json"], capture_output=True, text=True).stdout)
    assert not [t for t in listed if t["state"] == "running"]
    assert [t for t in listed if t["interrupted"]], "the evaluations cut off are recorded as interrupted"
    r = subprocess.run([*nasforge_cmd(), "resume", str(out), "--quiet", "--workers", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    listed = json.loads(subprocess.run([*nasforge_cmd(), "show", str(out), "--json"], capture_output=True, text=True).stdout)
    done = [t for t in listed if t["state"] in ("complete", "failed") and not t["interrupted"]]
    assert len(done) == 8 and sorted(t["ask_index"] for t in done) == list(range(8))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A real Ray head on loopback, joined by address (the multi-node path), stopped afterwards."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("Ray is not installed (pip install 'ray>=2.40')")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # keep every port on 127.0.0.1
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    cmd = [str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
           "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.mark.slow
def test_search_on_a_ray_cluster(tmp_path, ray_cluster):
    address, env = ray_cluster
    out = tmp_path / "ray"
    r = subprocess.run([*nasforge_cmd(), "search", "--dataset", "iris", "--budget", "6", "--epochs", "4",
                        "--ray-address", address, "--out", str(out), "--quiet"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    listed = json.loads(subprocess.run([*nasforge_cmd(), "show", str(out), "--json"], capture_output=True,
                                       text=True).stdout)
    assert len(listed) == 6 and all(t["state"] == "complete" for t in listed)
    assert any(t["asked_after"] < t["ask_index"] for t in listed)  # two tasks ran at once


@pytest.mark.slow
def test_asha_promotes_on_a_ray_cluster(tmp_path, ray_cluster):
    """Multi-fidelity on Ray: rungs are Ray tasks carrying their training state, decided as they come."""
    address, env = ray_cluster
    out = tmp_path / "ray-asha"
    r = subprocess.run([*nasforge_cmd(), "search", "--dataset", "digits", "--budget", "8", "--scheduler", "asha",
                        "--max-epochs", "4", "--eta", "2", "--max-layers", "2", "--max-units", "32",
                        "--ray-address", address, "--out", str(out), "--quiet"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    listed = json.loads(subprocess.run([*nasforge_cmd(), "show", str(out), "--json"], capture_output=True,
                                       text=True).stdout)
    assert len(listed) == 8 and {t["state"] for t in listed} == {"complete", "pruned"}
    assert all([r["epochs"] for r in t["rungs"]] == [1, 2, 4] for t in listed if t["state"] == "complete")


@pytest.mark.slow
def test_kill_9_of_the_search_leaves_no_worker_behind(tmp_path):
    """Workers watch the search process: SIGKILL reaches no handler, yet they (and then the
    forkserver) end within seconds instead of holding ~0.5 GB each."""
    args = ["search", "--dataset", "digits", "--budget", 40, "--workers", 2, "--epochs", 30, "--patience", 0,
            "--out", tmp_path / "r", "--jsonl"]
    proc = subprocess.Popen([*nasforge_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    search = psutil.Process(proc.pid)

    def helpers() -> tuple[list[psutil.Process], list[psutil.Process]]:
        """(every process the search started, the evaluation workers: the forkserver's children)"""
        found, workers = search.children(recursive=True), []
        for p in found:
            try:
                if p.ppid() != search.pid:
                    workers.append(p)
            except psutil.Error:  # a short-lived helper that already ended
                continue
        return found, workers

    deadline = time.time() + 120
    started, workers = helpers()
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.2)
        started, workers = helpers()
    assert len(workers) >= 2, "the search started no workers"
    time.sleep(1.0)  # let evaluations get going
    started, _ = helpers()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    gone, alive = psutil.wait_procs(started, timeout=15)
    assert not alive, f"left running: {[p.pid for p in alive]}"
