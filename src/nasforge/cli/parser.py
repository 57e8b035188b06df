"""The argument parser: every search flag comes from a settings model (``nasforge.flags``).

Building it imports the configuration models, the strategy registry and nothing heavy, so
``nasforge --help`` and every ``--help`` start without torch or scikit-learn.
"""
from __future__ import annotations

import argparse
from typing import Any

from ..config import SearchConfig
from ..errors import NasforgeError
from ..flags import FlagSpec, flag_specs, merge_specs
from ..spaces import SPACES
from ..strategies import STRATEGIES

# Help sections of `search`, in order; each flag's section comes from its settings model.
GROUPS = ["data", "search space", "strategy", "training", "objective", "execution", "output"]
# Aliases of --data that also say which kind of image files it is.
FORMAT_FLAGS = {"--images": ("images", "a folder with one subfolder of images per class"),
                "--idx": ("idx", "a folder with IDX files (MNIST / Fashion-MNIST / KMNIST format)"),
                "--cifar": ("cifar", "a folder with CIFAR-10 or CIFAR-100 python batches")}


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        raise NasforgeError(f"{self.prog}: {message}")


def search_flags() -> list[FlagSpec]:
    """The flags of ``nasforge search``: the run's settings, then each strategy's own."""
    owned = [("", spec) for spec in flag_specs(SearchConfig)]
    for space in SPACES:
        owned += [(space.name, spec) for spec in flag_specs(space.Settings, "space.", "search space")]
    for cls in STRATEGIES:
        owned += [(cls.name, spec) for spec in flag_specs(cls.Settings, "strategy.", "strategy")]
    return merge_specs(owned)


def _add(group: argparse._ArgumentGroup, spec: FlagSpec) -> None:
    if spec.const is not None:
        group.add_argument(spec.flag, dest=spec.path, action="store_const", const=spec.const, default=None,
                           help=spec.help)
        return
    group.add_argument(spec.flag, dest=spec.path, type=spec.parse, choices=spec.choices, default=None,
                       metavar=spec.metavar if spec.choices is None else None, help=spec.help)


def _add_output_flags(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quiet", action="store_true", help="no progress output")
    mode.add_argument("--jsonl", action="store_true", help="one JSON line per finished trial on stdout")


def _search_parser(sub: Any) -> None:
    s = sub.add_parser("search", help="run a search (the same command again continues it)",
                       usage="nasforge search [--dataset NAME | --csv FILE --target COLUMN | --data PATH] [options]",
                       description="Search for a network. Every option is also a key of the --config file.")
    groups = {name: s.add_argument_group(name) for name in GROUPS}
    groups["strategy"].add_argument("--strategy", dest="strategy.name", default=None, metavar="NAME",
                                    help=f"search strategy: {', '.join(STRATEGIES.names())} (default evolution)")
    groups["search space"].add_argument(
        "--space", dest="space.family", default=None, metavar="FAMILY",
        help=f"genome family: {', '.join(SPACES.names())} (default mlp; net: conv/pool/dense layers with skips, "
             "for images; nb201: the NAS-Bench-201 cell; cells: TS-ENAS's chains of published cells)")
    for spec in search_flags():
        _add(groups[spec.group], spec)
        if spec.path == "data.path":
            for flag, (_, text) in FORMAT_FLAGS.items():
                groups["data"].add_argument(flag, dest=flag[2:], default=None, metavar="PATH", help=text)
    groups["objective"].add_argument(
        "--weights", default=None, help="fitness = combined metric CM with these weights, e.g. "
        "accuracy=0.7,fps=0.2,energy=0.1 (default: validation accuracy)")
    out = groups["output"]
    out.add_argument("--config", default=None, help="TOML file with any of the settings (flags override it)")
    out.add_argument("--out", default=None, help="run directory (default runs/DATASET-STRATEGY-seedSEED)")
    out.add_argument("--storage", default=None, help="SQLAlchemy URL for the trial database (default: OUT/study.db)")
    _add_output_flags(out)


def resume_flags() -> list[FlagSpec]:
    """What may change when a run continues: where it runs, never what it searches."""
    return [spec for spec in search_flags() if spec.group == "execution"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="nasforge", description="Neural architecture search for your own data.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    _search_parser(sub)

    r = sub.add_parser("resume", help="continue a stopped search")
    r.add_argument("run", help="run directory")
    r.add_argument("--budget", type=int, default=None, help="raise the budget of evaluations")
    for spec in resume_flags():
        _add(r, spec)
    _add_output_flags(r)

    sh = sub.add_parser("show", help="list a run's trials")
    sh.add_argument("run", help="run directory")
    sh.add_argument("--json", action="store_true", help="print the trials as JSON")
    sh.add_argument("--top", type=int, default=None, help="only the N best trials")
    sh.add_argument("--front", action="store_true", help=(
        "only the Pareto front (a search with --objectives): each objective and test accuracy, the chosen knee marked"))

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
    tr.add_argument("--epochs", type=int, default=None, help=(
        "epochs, no early stopping (default 100; for a regression, the epochs early stopping kept in the search)"))
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--lr", type=float, default=None, help="learning rate (default: the run's)")
    tr.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the run's --device)")

    ex = sub.add_parser("export", help="write a trained model as ONNX, TorchScript or a state dict, checked")
    ex.add_argument("run", help="run directory")
    ex.add_argument("--format", required=True, choices=["onnx", "torchscript", "state-dict"])
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, default=None, help="trial number (default: the best)")
    which.add_argument("--final", action="store_true", help="the model 'nasforge train' made")
    ex.add_argument("--output", default=None, help="directory (default RUN/export/...)")
    ex.add_argument("--no-preprocessing", dest="preprocessing", action="store_false", help=(
        "onnx: the file takes preprocessed inputs, as the network does (default: raw columns or uint8 images, "
        "the run's preprocessing inside the graph)"))

    bl = sub.add_parser("baselines", help="classical models and a tuned MLP on the same split, for comparison")
    bl.add_argument("--dataset", default="digits")
    bl.add_argument("--csv", default=None)
    bl.add_argument("--target", default=None)
    bl.add_argument("--seed", type=int, default=0, help="the split's seed (use the search's)")
    bl.add_argument("--mlp-configs", type=int, default=20, help="configurations tried for the tuned MLP")

    sub.add_parser("datasets", help="list the built-in datasets")
    return parser
