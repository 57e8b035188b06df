"""Search strategies head to head at an equal budget of evaluations (trained candidates).

    .venv/bin/python benchmarks/search_methods.py            # evolution vs random: digits and wdbc, 5 seeds, budget 40
    .venv/bin/python benchmarks/search_methods.py --datasets iris --seeds 2 --budget 10   # quick look
    # LEMONADE's expert system at equal wall time: adaptive (default) and paper rule books vs evolution vs random:
    .venv/bin/python benchmarks/search_methods.py --section expert-wall --datasets digits-images,mnist-5k --space net \\
        --strategies expert,expert-paper,evolution,random --seconds 40 --budget 1000 --epochs 3 --max-params 100000 \\
        --weights accuracy=0.7,fps=0.3
    # ... and at an equal budget (rule designer) vs evolution vs random on a small CNN space:
    .venv/bin/python benchmarks/search_methods.py --section expert --datasets digits-images --space net \\
        --strategies expert,evolution,random --budget 30 --epochs 3 --max-params 100000 --weights accuracy=0.7,fps=0.3
    #   (the same with --section expert-60 --budget 60: twice the paper's 30 iterations)
    # ... and the LLM designer with a local model (pip install 'nasforge[local-llm]'):
    .venv/bin/python benchmarks/search_methods.py --section expert-llm --datasets digits-images --space net \\
        --strategies expert-llm,expert-llm-enforce --seeds 2 --budget 30 --epochs 3 --max-params 100000 \\
        --weights accuracy=0.7,fps=0.3 --llm-local gemma3-270m.gguf --llm-timeout 60

For each dataset, strategy and seed, one full nasforge search (same split per seed, same
space, same training settings). The selected model is the study's best by fitness (validation
accuracy, or LEMONADE's CM with --weights); its test accuracy is reported beside it. For the
LLM designer the table adds the share of iterations whose reply was a valid genome, the
instruction compliance rate and seconds per model call. Each --section is its own part of
benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _results import machine, mean_sd, table, write_section  # noqa: E402

import nasforge  # noqa: E402
from nasforge.objectives import parse_weights  # noqa: E402
from nasforge.strategies.expert import compliance_summary  # noqa: E402


def run_one(args: argparse.Namespace, dataset: str, strategy: str, seed: int, out: Path) -> tuple[object, float, dict]:
    settings: dict = {"space": {}}
    if args.space:
        settings["space"]["family"] = args.space
    if args.max_params:
        settings["space"]["max_params"] = args.max_params
    if args.epochs:
        settings["train"] = {"epochs": args.epochs}
    if args.weights:
        settings["objective"] = parse_weights(args.weights)
    name, llm = strategy, {}
    if strategy == "expert-paper":  # the published rule book, for comparison with the adaptive default
        name = "expert"
        settings["config"] = {"strategy": {"name": "expert", "rulebook": "paper"}}
    if strategy in LLM_STRATEGIES:
        name = "expert"
        llm = {"designer": "llm", "llm_local": args.llm_local, "llm_timeout": args.llm_timeout,
               "repair_attempts": args.repair_attempts, "enforce": strategy == "expert-llm-enforce"}
        settings["config"] = {"strategy": llm}
    start = time.perf_counter()

    def stop(record: object, study: object) -> None:
        if args.seconds and time.perf_counter() - start >= args.seconds:
            raise TimeUp

    try:
        nasforge.search(dataset, strategy=name, budget=args.budget, seed=seed, out=out, callback=stop, **settings)
    except TimeUp:
        pass
    seconds = time.perf_counter() - start
    result = nasforge.open_run(out)
    extra: dict = {}
    if llm:
        asked = [t for t in result.trials if t.info.get("designer_requested") == "llm"]
        valid = [t for t in asked if t.info.get("designer") == "llm"]
        calls = [c for t in asked for c in t.info.get("llm_seconds", [])]
        rejected = [e for t in asked for e in [*t.info.get("repairs", []), t.info.get("fallback")] if e]
        extra = {"valid": len(valid) / len(asked) if asked else float("nan"),
                 "compliance": compliance_summary(result.trials)["rate"],
                 "call_s": statistics.mean(calls) if calls else float("nan"),
                 "replies": len(calls), "rejected": Counter(rejection_reason(e) for e in rejected)}
    return result, seconds, extra


class TimeUp(KeyboardInterrupt):
    """Raised by the search callback when --seconds are spent (the loop handles it as Ctrl-C)."""


LLM_STRATEGIES = ("expert-llm", "expert-llm-enforce")  # the LLM designer; the second with --enforce
REASONS = (("not valid JSON", "JSON"), ("breaks the schema", "schema"), ("outside the search space", "space"),
           ("does not build", "build"), ("outputs shape", "build"), ("no complete reply within", "deadline"), ("LLM endpoint", "endpoint"))


def rejection_reason(error: str) -> str:
    """The check a rejected reply failed (a fallback message ends with the last reply's error)."""
    last = error.rsplit("last error: ", 1)[-1]
    return next((name for key, name in REASONS if key in last), "other")


LLM_NOTE = (" LLM columns: an iteration counts as valid when the model's genome (after at most K repairs) was "
            "adopted, else it fell back to the rule designer; instructions followed is the compliance rate over "
            "adopted replies; the last column counts every model call and the check each rejected reply failed "
            "(JSON, schema, space: the space's own rules such as layer order and counts, build, deadline: "
            "unfinished at --llm-timeout).")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits,wdbc")
    ap.add_argument("--strategies", default="evolution,random",
                    help="any of nasforge's, and expert-llm, expert-llm-enforce (the LLM designer, without/with --enforce)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=None,
                    help="equal wall time instead: every search stops at the first trial to end after this many "
                         "seconds (the budget then only caps it)")
    ap.add_argument("--space", default=None, help="genome family (default: the dataset's default, mlp)")
    ap.add_argument("--max-params", type=int, default=None, help="parameter budget of the space (all strategies)")
    ap.add_argument("--epochs", type=int, default=None, help="training epochs per candidate (default nasforge's)")
    ap.add_argument("--weights", default=None, help="objective weights, as nasforge search --weights")
    ap.add_argument("--llm-local", default=None, help="GGUF model for the expert-llm strategy")
    ap.add_argument("--llm-timeout", type=float, default=120.0)
    ap.add_argument("--repair-attempts", type=int, default=2, help="K for the expert-llm strategy")
    ap.add_argument("--section", default="search-methods", help="RESULTS.md section to write")
    args = ap.parse_args()
    torch.set_num_threads(1)
    llm_columns = bool(set(LLM_STRATEGIES) & set(args.strategies.split(",")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            for strategy in args.strategies.split(","):
                cols: dict[str, list[float]] = {k: [] for k in ("fit", "val", "test", "params", "fps", "secs",
                                                                 "valid", "compliance", "call_s", "n")}
                replies, rejected = 0, Counter()
                for seed in range(args.seeds):
                    result, seconds, extra = run_one(args, dataset, strategy, seed, Path(tmp) / f"{dataset}-{strategy}-{seed}")
                    b = result.best
                    m = b.metrics
                    for key, value in (("fit", b.fitness), ("val", m["val_acc"]), ("test", m["test_acc"]),
                                       ("params", m["params"]), ("fps", m.get("fps", float("nan"))), ("secs", seconds),
                                       ("n", sum(t.finished for t in result.trials)),
                                       *extra.items()):
                        if key == "replies":
                            replies += value
                        elif key == "rejected":
                            rejected += value
                        elif value is not None and value == value:  # NaN: undefined for this seed
                            cols[key].append(value)
                    print(f"{dataset} {strategy} seed {seed}: fitness {b.fitness:.4f} val {m['val_acc']:.4f} "
                          f"test {m['test_acc']:.4f} params {m['params']} {seconds:.1f}s {extra}", flush=True)
                row = [dataset, strategy, mean_sd(cols["n"], 1) if args.seconds else args.budget, args.seeds,
                       mean_sd(cols["fit"], 4), mean_sd(cols["val"], 2, 100),
                       mean_sd(cols["test"], 2, 100), mean_sd(cols["params"], 0), mean_sd(cols["fps"], 0),
                       mean_sd(cols["secs"], 1)]
                if llm_columns:
                    why = ", ".join(f"{name} {n}" for name, n in rejected.most_common()) or "none"
                    row += [mean_sd(cols["valid"], 2, 100), mean_sd(cols["compliance"], 2, 100), mean_sd(cols["call_s"], 1),
                            f"{replies} ({why})" if strategy in LLM_STRATEGIES else ""]
                rows.append(row)
    command = " ".join([".venv/bin/python", "benchmarks/search_methods.py", *sys.argv[1:]])
    header = ["dataset", "strategy", "candidates trained" if args.seconds else "budget", "seeds", "best fitness", "its val acc %", "its test acc %", "its params",
              "its FPS (batch)", "wall time s"]
    if llm_columns:
        header += ["iterations with a valid LLM genome %", "instructions followed %", "s per LLM call",
                   "LLM replies (rejected by check)"]
    space = (args.space or "mlp") + (f", ≤ {args.max_params:,} parameters" if args.max_params else "")
    fitness = f"CM with weights {args.weights}" if args.weights else "validation accuracy"
    equal = f"equal wall time, {args.seconds:g} s per search" if args.seconds else "an equal budget"
    write_section(args.section, f"## Search strategies at {equal} ({space} space; section {args.section})\n\n"
                  f"Command: `{command}`  \nMachine: {machine()}\n\n{table(header, rows)}\n\n"
                  f"Mean ± sd over seeds; each seed has its own data split. Fitness: {fitness}, computed on validation "
                  "data only; test accuracy is of the selected model." + (LLM_NOTE if llm_columns else "")
                  + (" Each search stops when the first trial ends after its seconds, so wall times run past them "
                     "by up to one candidate; *candidates trained*: trials that finished (repeats of a genome "
                     "already trained are not trained again and not counted)." if args.seconds else "")
                  + (" *expert*: the adaptive rule book (the default); *expert-paper*: `--rulebook paper`, "
                     "Table 2's constants and Algorithm 1 as published." if "expert-paper" in args.strategies else ""))


if __name__ == "__main__":
    main()
