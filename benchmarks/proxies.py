"""How well each zero-cost proxy ranks NAS-Bench-201 cells: Kendall tau and Spearman rho
against the table's 12-epoch validation accuracy.

    .venv/bin/python benchmarks/proxies.py                 # 300 cells sampled with seed 0, every dataset
    .venv/bin/python benchmarks/proxies.py --cells all --jobs 2   # all 15,625 cells (about 30 min on 2 cores)

With ``--cells all`` every score is also kept in ``benchmarks/.cache/nb201_<proxy>_<dataset>.npz``
(each cell's id and score; not in git), which ``benchmarks/nb201.py`` loads instead of
scoring the same networks again.

Each cell is built as the benchmark's own network (C=16, N=5, the dataset's input size and
classes) and scored by nasforge's proxies exactly as ``nasforge search --benchmark nb201
--proxy NAME`` scores it. Only the data-free proxies run here: the table holds no images, so
naswot and jacob_cov (which read a mini-batch) cannot be measured on it. Writes its section
of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from _results import command_line, machine, starmap, table, write_section  # noqa: E402
from scipy.stats import kendalltau, spearmanr  # noqa: E402

from nasforge.evaluators.table import NB201Table  # noqa: E402
from nasforge.proxies import PROXIES, make_scorer  # noqa: E402
from nasforge.spaces.nb201 import NB201Space  # noqa: E402

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_12epoch.csv"
CACHE = Path(__file__).resolve().parent / ".cache"


def cache_file(proxy: str, dataset: str) -> Path:
    """Where a proxy's scores of every cell of the table are kept (see the module's docstring)."""
    return CACHE / f"nb201_{proxy}_{dataset}.npz"


def score(name: str, dataset: str, genomes: list) -> tuple[list[float], float]:
    """One proxy's scores of ``genomes`` and the seconds they took (in a worker process, on one thread)."""
    scorer = make_scorer(name, NB201Space(), None, seed=0, table_dataset=dataset)
    began = time.perf_counter()
    return [scorer(g) for g in genomes], time.perf_counter() - began


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default="300", help="cells sampled (seed 0) or 'all'")
    ap.add_argument("--dataset", default=None, help="comma-separated (default: all in the table)")
    ap.add_argument("--bench-file", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--jobs", type=int, default=1, help="processes scoring at once, one thread each (default 1)")
    args = ap.parse_args()
    start = time.perf_counter()
    bench = NB201Table(args.bench_file)
    genomes = list(bench.archs)
    if args.cells != "all":
        pick = np.random.default_rng(0).choice(len(genomes), size=min(int(args.cells), len(genomes)), replace=False)
        genomes = [genomes[i] for i in sorted(pick)]
    names = [n for n in PROXIES.names() if PROXIES.get(n).data_free]
    rows = []
    for dataset in (args.dataset.split(",") if args.dataset else bench.datasets):
        dataset = bench.resolve_dataset(dataset.strip())
        val = np.array([bench.lookup(g, dataset)[0] for g in genomes])
        for name in names:
            chunks = [(name, dataset, genomes[k :: args.jobs]) for k in range(args.jobs)]
            parts = starmap(score, chunks, args.jobs)
            scores = np.empty(len(genomes))
            for k, (part, _) in enumerate(parts):
                scores[k :: args.jobs] = part
            seconds = sum(s for _, s in parts) / len(genomes)  # per cell on one process
            if args.cells == "all":
                CACHE.mkdir(exist_ok=True)
                np.savez(cache_file(name, dataset), ids=np.array([g.id for g in genomes]), scores=scores)
            ok = np.isfinite(scores)
            tau, rho = kendalltau(scores[ok], val[ok])[0], spearmanr(scores[ok], val[ok])[0]
            rows.append([dataset, name, int(ok.sum()), f"{tau:.3f}", f"{rho:.3f}", f"{seconds * 1e3:.0f}"])
            print(rows[-1], flush=True)
    wall = time.perf_counter() - start
    write_section("proxies", "## Zero-cost proxies on NAS-Bench-201: rank correlation with 12-epoch validation "
                  f"accuracy\n\nCommand: {command_line()}  \nMachine: {machine()}  \nTable: `{args.bench_file.name}`; "
                  f"{len(genomes)} cells ({'all' if args.cells == 'all' else 'sampled with seed 0'}); wall time "
                  f"{wall:.1f} s with {args.jobs} process(es).\n\nEach cell is scored on the benchmark's own untrained network (C=16, N=5) "
                  "as `nasforge search --benchmark nb201 --proxy NAME` scores it; *finite*: cells with a score "
                  "(the rest rank last in a search); *ms per cell*: building and scoring on one process of this machine. "
                  "naswot and jacob_cov read a mini-batch of images, which the table does not have, so they "
                  "are not in this table.\n\n"
                  + table(["dataset", "proxy", "finite", "Kendall tau", "Spearman rho", "ms per cell"], rows))
    print(f"wall time {wall:.1f}s")


if __name__ == "__main__":
    main()
