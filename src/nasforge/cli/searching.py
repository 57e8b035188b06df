"""Commands that search and train: search, resume, train, export, baselines.

Their heavy imports (torch, scikit-learn) happen inside each command, so the parser and
``--help`` stay instant.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import SearchConfig, build_config, load_toml, merge
from ..data.targets import quality_text
from ..errors import Interrupted
from .parser import FORMAT_FLAGS, resume_flags, search_flags
from .reading import print_best

if TYPE_CHECKING:
    from ..study import Study


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def search_config(args: argparse.Namespace) -> SearchConfig:
    """The configuration a `search` command line describes: the --config file, then flags."""
    from ..objectives import parse_weights

    tree: dict[str, Any] = load_toml(args.config) if args.config else {}
    flags: dict[str, Any] = {}
    for path in ("strategy.name", "space.family"):
        if getattr(args, path) is not None:
            _set(flags, path, getattr(args, path))
    for spec in search_flags():
        value = getattr(args, spec.path)
        if value is not None:
            _set(flags, spec.path, value)
    for flag, (kind, _) in FORMAT_FLAGS.items():
        if getattr(args, flag[2:]) is not None:
            _set(flags, "data.path", getattr(args, flag[2:]))
            _set(flags, "data.format", kind)
    if args.weights is not None:
        flags["objective"] = parse_weights(args.weights)
    given = flags.get("data", {})
    if any(k in given for k in ("dataset", "csv", "path")):  # a source flag replaces the file's source
        for key in {"dataset", "csv", "path"} - set(given):
            tree.get("data", {}).pop(key, None)
    if "strategy" in flags and "name" in flags["strategy"] and tree.get("strategy", {}).get("name") not in (
            None, flags["strategy"]["name"]):
        tree.pop("strategy")  # another strategy's settings do not carry over to this one
    return build_config(merge(tree, flags))


def _run(study: Study, mode: str) -> None:
    from ..progress import ProgressReporter

    study.check_device()  # a plain resume of a run whose device this machine lacks stops here, in one line
    for note in study.notes:
        print(f"note: {note}", file=sys.stderr)
    done = len(study.finished())
    best = study.best()
    with ProgressReporter(mode, study.config.budget, done, best.fitness if best else None) as reporter:
        try:
            study.run(reporter)
            if study.store.get("ended_early"):
                print(f"note: {study.store.get('ended_early')}", file=sys.stderr)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; continue with: nasforge resume {study.out}") from None
        finally:
            study.close()


def _mode(args: argparse.Namespace) -> str:
    return "quiet" if args.quiet else "jsonl" if args.jsonl else "auto"


def cmd_search(args: argparse.Namespace) -> None:
    from rich.console import Console

    from ..api import default_out
    from ..study import create_study

    cfg = search_config(args)
    out = Path(args.out) if args.out else default_out(cfg)
    study = create_study(out, cfg, storage=args.storage)
    if args.jsonl is False and not args.quiet:
        data = study.task.describe() if study.task else f"tabular benchmark {cfg.label} ({cfg.benchmark.file})"
        device = f"\ndevice: {study.device}" if study.device else ""
        Console(stderr=True).print(f"{data}\nstrategy: {study.strategy_description()}, budget {cfg.budget}, "
                                   f"{'objectives' if study.goal.multi else 'fitness'}: {study.goal.describe()}, run: {out}"
                                   f"{device}", soft_wrap=True, markup=False)
    _run(study, _mode(args))
    print_best(out, quiet=args.jsonl, config=cfg)


def cmd_resume(args: argparse.Namespace) -> None:
    from ..study import create_study, load_study

    study = load_study(args.run)
    overrides: dict[str, Any] = {}
    for spec in resume_flags():
        if getattr(args, spec.path, None) is not None:
            _set(overrides, spec.path, getattr(args, spec.path))
    if args.budget is not None:
        overrides["budget"] = args.budget
    if overrides:
        cfg = build_config(merge(study.config.model_dump(mode="json"), overrides))
        study.close()
        study = create_study(args.run, cfg)
    config = study.config
    _run(study, _mode(args))
    print_best(Path(args.run), quiet=args.jsonl, config=config)


def cmd_train(args: argparse.Namespace) -> None:
    from ..final import train_final

    m = train_final(args.run, trial=args.trial, epochs=args.epochs, seed=args.seed, lr=args.lr, device=args.device)
    from ..runs import read_stored_config

    multi = len(read_stored_config(args.run).get("objectives") or []) > 1
    knee = " (the knee of the Pareto front)" if args.trial is None and multi else ""
    print(f"trained trial {m.get('trial')}{knee} for {m.get('epochs')} epochs on train+validation "
          f"(kept epoch {m.get('kept_epoch')}): {quality_text(m, ('test',))}; saved to {Path(args.run) / 'final'}/")


def cmd_export(args: argparse.Namespace) -> None:
    from ..export import export_model

    r = export_model(args.run, args.format, trial=args.trial, final=args.final, output=args.output,
                     preprocessing=args.preprocessing)
    print(f"{r.path}\n  checked on {r.checked_rows} test inputs: max |difference| {r.max_abs_diff:.2e}; "
          f"genome {r.genome_path}; card {r.card_path}")


def cmd_baselines(args: argparse.Namespace) -> None:
    from ..baselines import run_baselines
    from ..data import load_task

    task = load_task(None if args.csv else args.dataset, csv=args.csv, target=args.target, seed=args.seed)
    print(f"{task.describe()} (split seed {args.seed}); selection on validation, fitted on train")
    for r in run_baselines(task, args.seed, mlp_configs=args.mlp_configs):
        print(f"  {r['name']:20s} test acc {r['test_acc']:.4f}  test F1 {r['test_f1']:.4f}  "
              f"params {r['params']:>7}  {r['wall_s']:.1f} s  {r['config']}")
