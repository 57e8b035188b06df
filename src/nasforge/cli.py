"""`nasforge search|resume|show|datasets`: a thin face on the Study.

User errors (bad data, flags, config values) print one line on stderr and exit with 2;
Ctrl-C prints how to resume and exits with 130.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .api import default_out, open_run
from .config import SearchConfig, build_config, load_toml, merge
from .data import BUILTINS
from .errors import NasforgeError
from .objectives import parse_weights
from .progress import ProgressReporter
from .spaces import genome_from_dict
from .storage import TrialRecord
from .strategies import STRATEGIES
from .study import Study, best_trial


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        raise NasforgeError(f"{self.prog}: {message}")


def _csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _size(text: str) -> list[int]:
    try:
        h, _, w = text.lower().partition("x")
        return [int(h), int(w or h)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must look like 32x32, got {text!r}") from None


# flag -> (config path, type, help); one table so flags, config keys and docs agree
SEARCH_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--dataset", "data.dataset", str, f"built-in dataset: {', '.join(sorted(BUILTINS))} (default digits)"),
    ("--csv", "data.csv", str, "your own CSV file (needs --target)"),
    ("--target", "data.target", str, "the CSV column holding the class labels"),
    ("--drop", "data.drop", _csv_list, "CSV columns to leave out, comma-separated"),
    ("--data", "data.path", str, "image data: a folder of class folders, IDX files or CIFAR batches (detected)"),
    ("--images", "data.path", str, "a folder with one subfolder of images per class"),
    ("--idx", "data.path", str, "a folder with IDX files (MNIST / Fashion-MNIST / KMNIST format)"),
    ("--cifar", "data.path", str, "a folder with CIFAR-10 or CIFAR-100 python batches"),
    ("--image-size", "data.image_size", _size, "resize images to HxW, e.g. 32x32 (folders of images)"),
    ("--image-channels", "data.channels", int, "1 (grayscale) or 3 (RGB) for folders of images (default: detected)"),
    ("--color-features", "data.color_features", str, "colors dataset inputs: rgb, hsv, lab or a mix like rgb+lab"),
    ("--strategy", "strategy.name", str, f"search strategy: {', '.join(STRATEGIES)} (default evolution)"),
    ("--budget", "budget", int, "number of evaluations (trained candidates), default 40"),
    ("--seed", "seed", int, "seed of the split, the strategy and every training run (default 0)"),
    ("--population", "strategy.population_size", int, "evolution: population size P (default budget/4, 5..100)"),
    ("--sample", "strategy.sample_size", int, "evolution: tournament sample size S (default P/4, at least 2)"),
    ("--designer", "strategy.expert.designer", str, "expert: who edits the genome, rules (offline) or llm"),
    ("--llm-url", "strategy.expert.llm_url", str, "expert+llm: OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1"),
    ("--llm-model", "strategy.expert.llm_model", str, "expert+llm: model name at that endpoint"),
    ("--llm-key-env", "strategy.expert.llm_key_env", str, "expert+llm: environment variable holding the API key"),
    ("--llm-local", "strategy.expert.llm_local", str,
     "expert+llm: a GGUF model file run in this process (pip install 'nasforge[local-llm]') instead of --llm-url"),
    ("--llm-grammar", "strategy.expert.llm_grammar", str, "expert+llm-local: schema (default), json or none"),
    ("--llm-timeout", "strategy.expert.llm_timeout", float, "expert+llm: seconds per request or local reply (default 60)"),
    ("--epochs", "train.epochs", int, "maximum training epochs per candidate (default 40)"),
    ("--patience", "train.patience", int, "early stopping: epochs without validation improvement (default 6)"),
    ("--lr", "train.lr", float, "learning rate (default 3e-3)"),
    ("--batch-size", "train.batch_size", int, "mini-batch size (default 64)"),
    ("--optimizer", "train.optimizer", str, "adam, adamw or sgd (default adam)"),
    ("--weight-decay", "train.weight_decay", float, "weight decay (default 0)"),
    ("--lower-level", "train.method", str,
     "how weights are found: gradient (default), de (differential evolution, MLPs) or hybrid (DE, then gradient)"),
    ("--min-layers", "space.min_layers", int, "fewest hidden layers (default 1)"),
    ("--max-layers", "space.max_layers", int, "most hidden layers (default 4)"),
    ("--min-units", "space.min_units", int, "narrowest layer (default 8)"),
    ("--max-units", "space.max_units", int, "widest layer (default 256)"),
    ("--max-params", "space.max_params", int, "parameter budget: larger candidates are never trained"),
    ("--activations", "space.activations", _csv_list, "activations to search, comma-separated"),
    ("--learning-rules", "space.learning_rules", _csv_list,
     "learning rules to search per layer: backprop,fa,usf,brsf,frsf (one name fixes it; default backprop)"),
    ("--space", "space.family", str,
     "genome family: mlp (default), net (conv/pool/dense layers with skips), nb201 (NAS-Bench-201 cell), cells (TS-ENAS)"),
    ("--min-cells", "space.min_cells", int, "cells space: fewest cells (default 3)"),
    ("--max-cells", "space.max_cells", int, "cells space: most cells (default 5)"),
    ("--channels", "space.channels", int, "cells space: channels of the first cell (default 8)"),
    ("--measure", "measure.backend", str, "torch (default) or onnx: also time the model in onnxruntime"),
    ("--benchmark", "benchmark.name", str, "tabular benchmark mode: nb201 (accuracies looked up, not trained)"),
    ("--bench-file", "benchmark.file", str, "the benchmark table, e.g. ../shared/data/nb201_12epoch.csv"),
    ("--bench-dataset", "benchmark.dataset", str, "cifar10, cifar100 or imagenet16-120 (default cifar10)"),
    ("--bench-seconds", "benchmark.seconds_per_query", float, "simulated training seconds per query (default 0)"),
    ("--threads", "threads", int, "torch threads per evaluation (default 1 in process; cores/workers with --workers)"),
    ("--workers", "executor.workers", int, "evaluate this many candidates at once in local worker processes"),
    ("--executor", "executor.kind", str, "in-process, processes or ray (default: in-process, processes with --workers)"),
    ("--ray-address", "executor.ray_address", str, "join a running Ray cluster: auto or HOST:PORT (implies --executor ray)"),
    ("--cpus-per-task", "executor.cpus_per_task", float, "Ray: CPUs each evaluation asks for (default 1)"),
    ("--gpus-per-task", "executor.gpus_per_task", float, "Ray: GPUs each evaluation asks for (default 0)"),
    ("--retries", "executor.retries", int, "re-runs of an evaluation whose worker died (default 1)"),
]


FORMAT_FLAGS = {"--data": "auto", "--images": "images", "--idx": "idx", "--cifar": "cifar"}


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quiet", action="store_true", help="no progress output")
    mode.add_argument("--jsonl", action="store_true", help="one JSON line per finished trial on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasforge", description="Neural architecture search for your own data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("search", help="run a search (the same command again continues it)")
    for flag, path, kind, text in SEARCH_FLAGS:
        s.add_argument(flag, dest=path if flag not in FORMAT_FLAGS else flag[2:], type=kind, default=None, help=text)
    s.add_argument("--weights", dest="weights", default=None,
                   help="fitness = combined metric CM with these weights, e.g. accuracy=0.7,fps=0.2,energy=0.1 "
                        "(default: validation accuracy)")
    s.add_argument("--enforce", dest="strategy.expert.enforce", action="store_const", const=True, default=None,
                   help="expert+llm: apply instructions the LLM ignored with the rule designer")
    s.add_argument("--no-inheritance", dest="strategy.two_stage.inheritance", action="store_const", const=False,
                   default=None, help="ts-enas: train every individual from scratch (no weight inheritance)")
    s.add_argument("--config", default=None, help="TOML file with any of the settings (flags override it)")
    s.add_argument("--out", default=None, help="run directory (default runs/DATASET-STRATEGY-seedSEED)")
    s.add_argument("--storage", default=None, help="SQLAlchemy URL for the trial database (default: OUT/study.db)")
    _add_output_flags(s)

    r = sub.add_parser("resume", help="continue a stopped search")
    r.add_argument("run", help="run directory")
    r.add_argument("--budget", type=int, default=None, help="raise the budget of evaluations")
    for flag, path, kind, text in SEARCH_FLAGS:
        if path.startswith("executor.") or path == "threads":
            r.add_argument(flag, dest=path, type=kind, default=None, help=text)
    _add_output_flags(r)

    sh = sub.add_parser("show", help="list a run's trials")
    sh.add_argument("run", help="run directory")
    sh.add_argument("--json", action="store_true", help="print the trials as JSON")
    sh.add_argument("--top", type=int, default=None, help="only the N best trials")

    rp = sub.add_parser("report", help="write a self-contained HTML report of a run")
    rp.add_argument("run", help="run directory")
    rp.add_argument("--output", default=None, help="HTML file (default RUN/report.html)")

    cp = sub.add_parser("compare", help="put runs side by side in one HTML report")
    cp.add_argument("runs", nargs="+", help="run directories")
    cp.add_argument("--output", default="comparison.html", help="HTML file (default comparison.html)")

    db = sub.add_parser("dashboard", help="open optuna-dashboard on a run (live while it runs)")
    db.add_argument("run", help="run directory")

    tr = sub.add_parser("train", help="train the chosen genome from scratch on train+validation, report test")
    tr.add_argument("run", help="run directory")
    tr.add_argument("--trial", type=int, default=None, help="trial number (default: the best)")
    tr.add_argument("--epochs", type=int, default=100, help="epochs (default 100; no early stopping)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--lr", type=float, default=None, help="learning rate (default: the run's)")

    ex = sub.add_parser("export", help="write a trained model as ONNX, TorchScript or a state dict, checked")
    ex.add_argument("run", help="run directory")
    ex.add_argument("--format", required=True, choices=["onnx", "torchscript", "state-dict"])
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, default=None, help="trial number (default: the best)")
    which.add_argument("--final", action="store_true", help="the model 'nasforge train' made")
    ex.add_argument("--output", default=None, help="directory (default RUN/export/...)")

    bl = sub.add_parser("baselines", help="classical models and a tuned MLP on the same split, for comparison")
    bl.add_argument("--dataset", default="digits")
    bl.add_argument("--csv", default=None)
    bl.add_argument("--target", default=None)
    bl.add_argument("--seed", type=int, default=0, help="the split's seed (use the search's)")
    bl.add_argument("--mlp-configs", type=int, default=20, help="configurations tried for the tuned MLP")

    sub.add_parser("datasets", help="list the built-in datasets")
    return parser


def _search_config(args: argparse.Namespace) -> SearchConfig:
    tree: dict[str, Any] = load_toml(args.config) if args.config else {}
    flags: dict[str, Any] = {}
    for flag, path, _, _ in SEARCH_FLAGS:
        value = getattr(args, path if flag not in FORMAT_FLAGS else flag[2:])
        if value is not None:
            _set(flags, path, value)
            if flag in FORMAT_FLAGS:
                _set(flags, "data.format", FORMAT_FLAGS[flag])
    for path in ("strategy.expert.enforce", "strategy.two_stage.inheritance"):
        if getattr(args, path) is not None:
            _set(flags, path, getattr(args, path))
    if args.weights is not None:
        flags["objective"] = parse_weights(args.weights)
    given = flags.get("data", {})
    if any(k in given for k in ("dataset", "csv", "path")):  # a source flag replaces the file's source
        for key in {"dataset", "csv", "path"} - set(given):
            tree.get("data", {}).pop(key, None)
    return build_config(merge(tree, flags))


def _run(study: Study, mode: str) -> None:
    done = len(study.finished())
    best = study.best()
    with ProgressReporter(mode, study.config.budget, done, best.fitness if best else None) as reporter:
        try:
            study.run(reporter)
        except KeyboardInterrupt:
            raise NasforgeError(f"interrupted; continue with: nasforge resume {study.out}") from None
        finally:
            study.close()


def _mode(args: argparse.Namespace) -> str:
    return "quiet" if args.quiet else "jsonl" if args.jsonl else "bar"


def cmd_search(args: argparse.Namespace) -> None:
    cfg = _search_config(args)
    out = Path(args.out) if args.out else default_out(cfg.label, cfg.strategy.name, cfg.seed)
    study = Study(out, cfg, storage=args.storage)
    console = Console(stderr=True)
    if args.jsonl is False and not args.quiet:
        data = study.task.describe() if study.task else f"tabular benchmark {cfg.label} ({cfg.benchmark.file})"
        console.print(f"{data}\nstrategy: {study.strategy_description()}, budget {cfg.budget}, "
                      f"fitness: {cfg.objective.describe()}, run: {out}", soft_wrap=True, markup=False)
    _run(study, _mode(args))
    _print_best(out, quiet=args.jsonl, config=cfg)


def cmd_resume(args: argparse.Namespace) -> None:
    study = Study(args.run)
    overrides: dict[str, Any] = {}
    for flag, path, _, _ in SEARCH_FLAGS:
        if (path.startswith("executor.") or path == "threads") and getattr(args, path, None) is not None:
            _set(overrides, path, getattr(args, path))
    if args.budget is not None:
        overrides["budget"] = args.budget
    if overrides:
        cfg = build_config(merge(study.config.model_dump(mode="json"), overrides))
        study.close()
        study = Study(args.run, cfg)
    config = study.config
    _run(study, _mode(args))
    _print_best(Path(args.run), quiet=args.jsonl, config=config)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _genome_text(record: TrialRecord) -> str:
    """A genome's summary, escaped: '[fa,usf]' is text, not a rich style tag."""
    try:
        return escape(genome_from_dict(record.genome).summary())
    except NasforgeError:
        return escape(json.dumps(record.genome))


def _print_best(out: Path, quiet: bool = False, config: SearchConfig | None = None) -> None:
    run = open_run(out)
    if quiet:
        return
    if config is not None and config.strategy.name == "bilevel":
        from .strategies import trade_off_report

        print(trade_off_report(run.trials, config.strategy.bilevel))
    console = Console(soft_wrap=True)
    if run.best is None:
        failed = [t for t in run.trials if t.state == "failed"]
        first = failed[0].error if failed else "no trials"
        console.print(f"no candidate trained successfully in {out}; first error: {escape(str(first))}")
        return
    b, m = run.best, run.best.metrics
    console.print(f"\nbest: trial {b.number}  {_genome_text(b)}")
    accuracy = [f"{label} {_fmt(m[key])}" for key, label in
                (("val_acc", "validation accuracy"), ("test_acc", "test accuracy"), ("test_f1", "test macro-F1")) if key in m]
    console.print("  " + "   ".join(accuracy))
    if "latency_ms" in m:
        console.print(f"  {m['params']} parameters, {m['flops']} FLOPs, latency {_fmt(m['latency_ms'], 3)} ms, "
                      f"{_fmt(m['fps'], 0)} samples/s, trained in {_fmt(m['train_seconds'], 2)} s")
    failed = sum(t.state == "failed" and not t.interrupted for t in run.trials)
    saved = f"saved to {out}/best/" + (f"; in Python: nasforge.load_model({str(out)!r})"
                                        if (out / "best" / "model.pt").is_file() else "")
    console.print(f"  {sum(t.finished for t in run.trials)} evaluations ({failed} failed); {saved}")


COLUMNS = [("val_acc", "val acc"), ("test_acc", "test acc"), ("test_f1", "test F1"), ("params", "params"),
           ("flops", "FLOPs"), ("latency_ms", "latency ms"), ("train_seconds", "train s")]


def cmd_show(args: argparse.Namespace) -> None:
    run = open_run(args.run)
    trials = sorted(run.trials, key=lambda t: t.number)
    if args.top:
        trials = sorted((t for t in trials if t.fitness is not None), key=lambda t: -t.fitness)[: args.top]
    if args.json:
        print(json.dumps([t.__dict__ for t in trials], indent=1, default=str))
        return
    table = Table(title=f"{args.run}: {len(run.trials)} trials")
    for name in ["#", "status", "genome", "fitness", *(label for _, label in COLUMNS), "parent", "operator"]:
        table.add_column(name, overflow="fold")
    best = run.best.number if run.best else None
    for t in trials:
        status = t.state + (" (interrupted)" if t.interrupted else "") + (" *best*" if t.number == best else "")
        cells = [_fmt(t.metrics.get(key), 3 if key == "latency_ms" else 2 if key == "train_seconds" else 4) for key, _ in COLUMNS]
        table.add_row(str(t.number), status, _genome_text(t), _fmt(t.fitness), *cells,
                      ",".join(map(str, t.parents)) or "-", t.operator)
        if t.error:
            table.add_row("", "", f"[red]{escape(t.error)}[/red]", *[""] * (len(COLUMNS) + 3))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def cmd_datasets(args: argparse.Namespace) -> None:
    for name in sorted(BUILTINS):
        print(f"{name:10s} {BUILTINS[name].description}")
    print("your own:  --csv FILE --target COLUMN")


def cmd_train(args: argparse.Namespace) -> None:
    from .final import train_final

    m = train_final(args.run, trial=args.trial, epochs=args.epochs, seed=args.seed, lr=args.lr)
    print(f"trained trial {m.get('trial')} for {m.get('epochs')} epochs on train+validation "
          f"(kept epoch {m.get('kept_epoch')}): test accuracy {_fmt(m.get('test_acc'))}, "
          f"test macro-F1 {_fmt(m.get('test_f1'))}; saved to {Path(args.run) / 'final'}/")


def cmd_export(args: argparse.Namespace) -> None:
    from .export import export_model

    r = export_model(args.run, args.format, trial=args.trial, final=args.final, output=args.output)
    print(f"{r.path}\n  checked on {r.checked_rows} test inputs: max |difference| {r.max_abs_diff:.2e}; "
          f"genome {r.genome_path}; card {r.card_path}")


def cmd_baselines(args: argparse.Namespace) -> None:
    from .baselines import run_baselines
    from .data import load_task

    task = load_task(None if args.csv else args.dataset, csv=args.csv, target=args.target, seed=args.seed)
    print(f"{task.describe()} (split seed {args.seed}); selection on validation, fitted on train")
    for r in run_baselines(task, args.seed, mlp_configs=args.mlp_configs):
        print(f"  {r['name']:20s} test acc {r['test_acc']:.4f}  test F1 {r['test_f1']:.4f}  "
              f"params {r['params']:>7}  {r['wall_s']:.1f} s  {r['config']}")


def cmd_report(args: argparse.Namespace) -> None:
    from .report import write_report

    print(write_report(args.run, args.output))


def cmd_compare(args: argparse.Namespace) -> None:
    from .report import write_comparison

    print(write_comparison(args.runs, args.output))


def cmd_dashboard(args: argparse.Namespace) -> None:
    from .report import dashboard_command

    command = dashboard_command(args.run)
    if Path(command[0]).is_file() or shutil.which(command[0]):
        os.execvp(command[0], command)
    print("optuna-dashboard is not installed: pip install optuna-dashboard, then run:\n  " + " ".join(command))


COMMANDS = {"search": cmd_search, "resume": cmd_resume, "show": cmd_show, "datasets": cmd_datasets,
            "report": cmd_report, "compare": cmd_compare, "dashboard": cmd_dashboard,
            "train": cmd_train, "export": cmd_export, "baselines": cmd_baselines}


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C must stop a search cleanly even when a parent shell started us with SIGINT ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        COMMANDS[args.command](args)
        return 0
    except NasforgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130 if "interrupted;" in str(exc) else 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
