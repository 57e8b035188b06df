"""Single learning rules vs searched mixes of rules, at an equal budget of evaluations.

    .venv/bin/python benchmarks/learning_rules.py                 # digits (mlp) + digits-images (net), 3 seeds
    .venv/bin/python benchmarks/learning_rules.py --quick         # smoke run, under 3 minutes
    .venv/bin/python benchmarks/learning_rules.py --mnist         # also mnist-5k (net space; slow)

Checks the finding of "NAS with mixed bio-inspired learning rules" (SPEC section 5) at our
scale: a search whose genomes may mix the bio-inspired rules (fa, usf, brsf, frsf) layer by
layer should select a better model than a search restricted to any one of those rules, and
the paper's other claim, robustness to adversarial inputs: every selected model is attacked
with FGSM (Goodfellow et al. 2015) on the test set, once with the true input gradient (the
network in eval mode differentiates as a plain network: what any white-box attacker can
compute from the weights) and once with the gradient the model's own learning rules send
back (its feedback matrices B in place of W^T: what an attacker who differentiates the
training graph gets).
Seven conditions per dataset and seed, each one full regularized-evolution search with the
same budget of evaluations, the same data split (per seed), the same training settings and
the same space apart from the allowed rules: each single rule (backprop, fa, usf, brsf,
frsf), the searched mix of the four bio rules, and the searched mix of all five. The model
is selected by validation accuracy only; its test accuracy is what is compared. Writes the
``learning-rules`` section of benchmarks/RESULTS.md (after every dataset, so a stopped run
still leaves what it finished).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402
from _results import machine, mean_sd, table, write_section  # noqa: E402

import nasforge  # noqa: E402

BIO = ("fa", "usf", "brsf", "frsf")
CONDITIONS: dict[str, tuple[str, ...]] = {
    "backprop": ("backprop",),
    "fa": ("fa",),
    "usf": ("usf",),
    "brsf": ("brsf",),
    "frsf": ("frsf",),
    "bio mix": BIO,
    "all mix": ("backprop", *BIO),
}
FAMILY = {"digits": "mlp", "digits-images": "net", "mnist-5k": "net"}
# Per-dataset defaults, sized so that the default run (7 conditions x 3 seeds x budget per
# dataset) ends in about half an hour on a shared 2-core machine. The net space is capped
# at 100k parameters so that no single candidate dominates the wall time.
DEFAULTS = {
    "digits": {"budget": 16, "epochs": 30},
    "digits-images": {"budget": 10, "epochs": 10},
    "mnist-5k": {"budget": 8, "epochs": 6},
}
QUICK = {"seeds": 2, "budget": 3, "epochs": 3}
NET_MAX_PARAMS = 100_000
MEASURE = {"warmup": 1, "repeats": 3}  # latency is not reported here: keep its cost small
EPSILONS = (0.1, 0.3)  # FGSM step, in the network's (standardised) input units: a tenth and 0.3 of a feature's sd


@dataclass
class Run:
    val: float
    test: float
    rules: list[str]  # of the selected model: hidden/conv/dense layers in order, then the output layer
    summary: str
    seconds: float
    failed: int
    # FGSM test accuracy per epsilon: (true input gradient, the rules' feedback gradient)
    fgsm: dict[float, tuple[float, float]] = field(default_factory=dict)


@dataclass
class DatasetResult:
    dataset: str
    family: str
    budget: int
    epochs: int
    seeds: int
    runs: dict[str, list[Run]] = field(default_factory=dict)


def search_once(dataset: str, family: str, rules: tuple[str, ...], seed: int, budget: int, epochs: int,
                out: Path) -> Run:
    space: dict = {"learning_rules": list(rules), "family": family}
    if family == "net":
        space["max_params"] = NET_MAX_PARAMS
    start = time.perf_counter()
    result = nasforge.search(dataset, strategy="evolution", budget=budget, seed=seed, out=out, space=space,
                             train={"epochs": epochs}, measure=MEASURE)
    seconds = time.perf_counter() - start
    failed = sum(t.state == "failed" for t in result.trials)
    if result.best is None:
        return Run(float("nan"), float("nan"), [], "(no trial completed)", seconds, failed)
    genome = result.best_genome
    task = nasforge.load_task(dataset, seed=seed)  # the split the search used
    module = nasforge.load_model(out).module
    fgsm = {eps: (fgsm_accuracy(module, task.X_test, task.y_test, eps),
                  fgsm_accuracy(module, task.X_test, task.y_test, eps, through_feedback=True)) for eps in EPSILONS}
    return Run(result.best.metrics["val_acc"], result.best.metrics["test_acc"], list(genome.rules()),
               genome.summary(), seconds, failed, fgsm)


def fgsm_accuracy(module: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, eps: float,
                  through_feedback: bool = False) -> float:
    """Accuracy on ``X + eps * sign(grad_X loss)`` (one FGSM step). The gradient is the true
    one (the module in eval mode runs every rule layer as the plain op), or with
    ``through_feedback`` the one the layers' learning rules send back (rule layers in training
    mode, everything else, dropout and batch norm included, in eval mode). The attacked
    inputs are always classified by the plain eval-mode network."""
    from nasforge.learning_rules import RuleConv2d, RuleLinear

    module.eval()
    if through_feedback:
        for layer in module.modules():
            if isinstance(layer, (RuleLinear, RuleConv2d)):
                layer.train()
    X = X.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(module(X), y)
    (grad,) = torch.autograd.grad(loss, X)
    module.eval()
    with torch.no_grad():
        return float((module(X + eps * grad.sign()).argmax(1) == y).float().mean())


def spread(values: list[float]) -> str:
    return f"{min(values) * 100:.1f}–{max(values) * 100:.1f}" if values else "n/a"


def t_critical(n: int) -> float:
    """Two-sided 95 % Student t quantile for n paired differences."""
    if n < 2:
        return math.inf
    try:
        from scipy.stats import t

        return float(t.ppf(0.975, n - 1))
    except ImportError:  # pragma: no cover - scipy comes with scikit-learn
        return {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78}.get(n, 2.0)


def paired(a: list[Run], b: list[Run], value=lambda r: r.test) -> tuple[float, float, int]:
    """Mean difference of ``value`` (default: test accuracy) a - b over seeds (same split per
    seed), its 95 % CI half-width, wins of a."""
    diffs = [value(x) - value(y) for x, y in zip(a, b)]
    mean = statistics.mean(diffs)
    half = t_critical(len(diffs)) * statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.inf
    return mean, half, sum(d > 0 for d in diffs)


def rules_used(runs: list[Run]) -> str:
    """Per seed the rules of the selected model (layers in order, output last), and the totals."""
    per_seed = "; ".join(f"s{i}: {','.join(r.rules)}" for i, r in enumerate(runs))
    counts = Counter(rule for r in runs for rule in r.rules)
    total = ", ".join(f"{rule} {n}" for rule, n in counts.most_common())
    distinct = [len(set(r.rules)) for r in runs]
    return f"{per_seed} (layers: {total}; distinct rules per model: {','.join(map(str, distinct))})"


def verdict(res: DatasetResult) -> str:
    runs = res.runs
    mix = runs["bio mix"]
    n = len(mix)
    singles = {rule: statistics.mean(r.test for r in runs[rule]) for rule in BIO}
    mix_mean = statistics.mean(r.test for r in mix)
    best_rule = max(singles, key=singles.get)
    beaten = [rule for rule in BIO if mix_mean > singles[rule]]
    diff, half, wins = paired(mix, runs[best_rule])
    noise = abs(diff) <= half
    if len(beaten) == len(BIO):
        held = "**held in the mean**" + (", but the difference is within noise" if noise else " and outside the noise")
    else:
        lost = [rule for rule in BIO if rule not in beaten]
        held = f"**did not hold**: the mix does not beat {', '.join(lost)}" + (" (within noise)" if noise else "")
    lines = [
        f"- **{res.dataset}**: bio mix {mix_mean * 100:.2f} % vs best single bio rule {best_rule} "
        f"{singles[best_rule] * 100:.2f} % (test, mean of {n} seeds). Paired difference (same split per seed) "
        f"{diff * 100:+.2f} points, 95 % CI ± {half * 100:.2f}; the mix wins on {wins} of {n} seeds. "
        f"Mix beats {len(beaten)} of {len(BIO)} single bio rules in the mean. Finding {held}."
    ]
    all_diff, all_half, all_wins = paired(runs["all mix"], runs["backprop"])
    lines.append(
        f"  All five rules mixed vs backprop alone: {all_diff * 100:+.2f} points (95 % CI ± {all_half * 100:.2f}), "
        f"wins on {all_wins} of {n} seeds."
    )
    bp_diff, bp_half, _ = paired(runs["backprop"], mix)
    lines.append(f"  Backprop alone vs bio mix: {bp_diff * 100:+.2f} points (95 % CI ± {bp_half * 100:.2f}).")
    return "\n".join(lines)


def robustness_rows(res: DatasetResult) -> list[list[object]]:
    rows = []
    for name, runs in res.runs.items():
        row: list[object] = [res.dataset, name, mean_sd([r.test for r in runs], 2, 100)]
        for eps in EPSILONS:
            row += [mean_sd([r.fgsm[eps][0] for r in runs], 2, 100), mean_sd([r.fgsm[eps][1] for r in runs], 2, 100)]
        rows.append(row)
    return rows


def robustness_verdict(res: DatasetResult) -> str:
    """Under the true-gradient attack: the bio mix against backprop and against each single bio rule."""
    runs, lines = res.runs, []
    for eps in EPSILONS:
        def robust(r: Run, eps: float = eps) -> float:
            return r.fgsm[eps][0]

        mix = statistics.mean(robust(r) for r in runs["bio mix"])
        diff, half, wins = paired(runs["bio mix"], runs["backprop"], robust)
        singles = {rule: statistics.mean(robust(r) for r in runs[rule]) for rule in BIO}
        best = max(singles, key=singles.get)
        bdiff, bhalf, bwins = paired(runs["bio mix"], runs[best], robust)
        feedback = statistics.mean(r.fgsm[eps][1] for r in runs["bio mix"])
        lines.append(
            f"- **{res.dataset}**, eps {eps}: bio mix {mix * 100:.2f} % under the true-gradient attack; vs backprop "
            f"{diff * 100:+.2f} points (95 % CI ± {half * 100:.2f}, wins {wins} of {len(runs['bio mix'])}): "
            + ("**more robust**" if diff - half > 0 else "less robust" if diff + half < 0 else "within noise")
            + f"; vs the most robust single bio rule ({best}) {bdiff * 100:+.2f} points (± {bhalf * 100:.2f}, wins "
            f"{bwins}). Attacked through its own feedback instead, the bio mix keeps {feedback * 100:.2f} %.")
    return "\n".join(lines)


def dataset_section(res: DatasetResult) -> str:
    rows = []
    for name, rules in CONDITIONS.items():
        runs = res.runs.get(name)
        if not runs:
            continue
        val, test = [r.val for r in runs], [r.test for r in runs]
        used = rules_used(runs) if len(rules) > 1 else "-"
        rows.append([name, ",".join(rules), mean_sd(val, 2, 100), mean_sd(test, 2, 100), spread(test), used,
                     sum(r.failed for r in runs), f"{statistics.mean(r.seconds for r in runs):.0f}"])
    head = (f"### {res.dataset} ({res.family} space{f', ≤ {NET_MAX_PARAMS:,} parameters' if res.family == 'net' else ''}"
            f"; budget {res.budget} evaluations, {res.epochs} epochs max, {res.seeds} seeds)\n\n")
    body = table(["condition", "rules searched", "best val acc %", "its test acc %", "test spread %",
                  "rules of the selected models", "failed trials", "s per search"], rows)
    per_seed = table(["condition", *(f"seed {s} test %" for s in range(res.seeds)), "selected model (seed 0)"],
                     [[name, *(f"{r.test * 100:.2f}" for r in runs), runs[0].summary]
                      for name, runs in res.runs.items()])
    return head + body + "\n\nPer seed:\n\n" + per_seed


def write(results: list[DatasetResult], command: str, wall: float, done: bool) -> None:
    parts = [
        "## Learning rules: single rules vs searched mixes (SPEC §5, seed 002)",
        "",
        f"Command: `{command}`  \nMachine: {machine()}  \n"
        f"Wall time: {wall / 60:.1f} min{'' if done else ' so far (partial: still running or stopped)'}",
        "",
        "Each cell: regularized evolution, the given budget of evaluations for every condition; the space is the "
        "same apart from the learning rules allowed per layer (`space={\"learning_rules\": [...]}`). The model is "
        "selected by validation accuracy; its test accuracy is reported. Mean ± sd over seeds (each seed its own "
        "data split, shared by all conditions, so differences are paired). Rules are listed hidden/conv/dense "
        "layers first, output layer last.",
    ]
    for res in results:
        parts += ["", dataset_section(res)]
    finished = [r for r in results if all(name in r.runs for name in CONDITIONS)]
    if finished:
        parts += ["", "### Does a searched mix of bio-inspired rules beat every single bio-inspired rule?", ""]
        parts += [verdict(r) for r in finished]
        parts += ["", "“Within noise” means the 95 % t-interval of the paired per-seed difference contains 0. "
                  "With this few seeds and small data the test sets are 360 images (digits), so one image is "
                  "0.28 points."]
    if any(run.fgsm for r in results for runs in r.runs.values() for run in runs):
        head = ["dataset", "condition", "clean test acc %"]
        for eps in EPSILONS:
            head += [f"FGSM {eps}, true gradient %", f"FGSM {eps}, through the rules' feedback %"]
        parts += ["", "### Robustness to adversarial inputs (FGSM on the selected models)", "",
                  "The paper credits bio-inspired rules with robustness. Each selected model's test set is attacked "
                  "with one FGSM step of size eps in the network's input units (features and pixels are standardised, "
                  "so eps 0.1 is a tenth of a feature's sd). *True gradient*: the model in eval mode differentiates as "
                  "a plain network, what any attacker holding the weights computes; this is the robustness a user "
                  "gets. *Through the rules' feedback*: the input gradient the layers' own rules send back (B in "
                  "place of W^T); a model that only looks robust to this attack is masking its gradient, not robust. "
                  "The selected models differ in architecture as well as rules, as a user's would.", "",
                  table(head, [row for r in results for row in robustness_rows(r)])]
        parts += ["", *[robustness_verdict(r) for r in finished]]
    write_section("learning-rules", "\n".join(parts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="digits,digits-images",
                    help="comma-separated: digits (mlp space), digits-images, mnist-5k (net space)")
    ap.add_argument("--mnist", action="store_true", help="add mnist-5k (net space) to the datasets")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per condition (default 3; --quick 2)")
    ap.add_argument("--budget", type=int, default=None, help="evaluations per search (default per dataset)")
    ap.add_argument("--epochs", type=int, default=None, help="max training epochs per candidate (default per dataset)")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="subset of: " + ", ".join(CONDITIONS))
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    args = ap.parse_args()
    torch.set_num_threads(1)
    datasets = [d for d in args.datasets.split(",") if d]
    if args.mnist and "mnist-5k" not in datasets:
        datasets.append("mnist-5k")
    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS] + [d for d in datasets if d not in FAMILY]
    if unknown:
        ap.error(f"unknown dataset or condition: {', '.join(unknown)}")
    seeds = args.seeds or (QUICK["seeds"] if args.quick else 3)
    command = ".venv/bin/python benchmarks/learning_rules.py" + "".join(f" {a}" for a in sys.argv[1:])
    results: list[DatasetResult] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nasforge-lr-") as tmp:
        for dataset in datasets:
            budget = args.budget or (QUICK["budget"] if args.quick else DEFAULTS[dataset]["budget"])
            epochs = args.epochs or (QUICK["epochs"] if args.quick else DEFAULTS[dataset]["epochs"])
            res = DatasetResult(dataset, FAMILY[dataset], budget, epochs, seeds)
            results.append(res)
            for name in conditions:
                res.runs[name] = []
                for seed in range(seeds):
                    run = search_once(dataset, res.family, CONDITIONS[name], seed, budget, epochs,
                                      Path(tmp) / f"{dataset}-{name.replace(' ', '_')}-{seed}")
                    res.runs[name].append(run)
                    print(json.dumps({"dataset": dataset, "condition": name, "seed": seed, "val": round(run.val, 4),
                                      "test": round(run.test, 4), "rules": run.rules, "genome": run.summary,
                                      "failed": run.failed, "seconds": round(run.seconds, 1),
                                      "fgsm": {str(e): [round(a, 4) for a in v] for e, v in run.fgsm.items()},
                                      "elapsed_min": round((time.perf_counter() - start) / 60, 2)}), flush=True)
            write(results, command, time.perf_counter() - start, done=False)
    wall = time.perf_counter() - start
    write(results, command, wall, done=True)
    print(f"done in {wall / 60:.1f} min; wrote the learning-rules section of benchmarks/RESULTS.md", flush=True)
    for res in results:
        if all(name in res.runs for name in CONDITIONS):
            print(verdict(res))
            print(robustness_verdict(res))


if __name__ == "__main__":
    main()
