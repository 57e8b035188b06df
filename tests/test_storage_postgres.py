"""The trial store on a real PostgreSQL server, started on loopback by the test and stopped after."""
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

import nasforge

PG_BIN = Path("/usr/lib/postgresql")


def _pg_tool(name):
    found = sorted(PG_BIN.glob(f"*/bin/{name}")) if PG_BIN.is_dir() else []
    return str(found[-1]) if found else shutil.which(name)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    pytest.importorskip("psycopg2", reason="pip install psycopg2-binary")
    as_user = []
    data = Path(tempfile.mkdtemp(prefix="nasforge-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    def run(*cmd):
        return subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)
    run(initdb, "-D", str(data / "db"), "--auth=trust", "-U", "postgres")
    run(pg_ctl, "-D", str(data / "db"), "-w", "-l", str(data / "log"),
        "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {data}", "start")
    try:
        run(_pg_tool("createdb") or "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "nasforge")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/nasforge"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data / "db"), "-m", "fast", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_runs_share_a_postgresql_database(tmp_path, postgres_url):
    fast = {"train": {"epochs": 3}, "space": {"max_layers": 2, "max_units": 32}}
    a = nasforge.search("iris", strategy="random", budget=3, out=tmp_path / "a", storage=postgres_url, **fast)
    b = nasforge.search("wine", strategy="evolution", budget=4, out=tmp_path / "b", storage=postgres_url, **fast)
    assert len(a.trials) == 3 and len(b.trials) == 4
    assert not (tmp_path / "a" / "study.db").exists()  # nothing went to SQLite
    # the run directory remembers the URL: reading and continuing need no --storage
    assert len(nasforge.open_run(tmp_path / "a").trials) == 3
    more = nasforge.search("iris", strategy="random", budget=5, out=tmp_path / "a", storage=postgres_url, **fast)
    assert [t.number for t in more.trials] == list(range(5))
    assert len(nasforge.open_run(tmp_path / "b").trials) == 4  # the other run is untouched
