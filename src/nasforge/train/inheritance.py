"""TS-ENAS's cell-based weight inheritance (SPEC §2, seed 004 Section IV-B2).

A supernet holding all 8 published cells is trained once; its weights are stored per cell
type. A new individual starts each of its cells from the stored weights of that cell type
(and its stem from the stored stem), then trains briefly. Every ``refresh_every``
evaluations the stored weights are refreshed from the best individuals: the best one first
updates every cell type it contains, then the next best updates the types not yet updated,
and so on (the paper's steps 1-4).

Our choices (**ours**), where the paper is silent:
- Cells are stored per (type, inner width): a cell's tensors depend on its width, which
  doubles at every reduction. So one supernet is trained per width level: level l has its
  normal cells at C*2**l and its reductions at C*2**(l+1), for l = 0 .. the most reductions
  the space allows (the last level without reductions, which could not occur there).
- Copying is by name and shape: whatever of a stored cell fits the new cell is copied (the
  ops of a fine-stage-edited cell or a 1x1 preprocess with other input channels may not).
  The fraction of the network's parameters copied is recorded as ``inherited_fraction``.
- "The best individuals" are the ``keep_best`` best evaluated so far by validation accuracy
  (then validation loss), whatever the objective: the store does not see the population.

Resume: the store is saved to ``path`` after every evaluation; the newest evaluation is kept
pending until the next one starts, so an evaluation that the search process re-runs after a
crash (same genome) replaces it instead of being counted twice. The supernet is trained
only when no saved store exists.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import Task
from ..spaces.cell_model import CellPlan, SuperNet
from ..spaces.cells import NORMAL_CODES, REDUCTION_CODES, CellsSpace, output_nodes, published_cells
from .trainer import TrainSettings, predict_logits, train

VERSION = 1
State = dict[str, torch.Tensor]


def slot_key(code: int, width: int) -> str:
    return f"{code}@{width}"


def copy_matching(module: nn.Module, stored: State) -> tuple[int, int]:
    """Copy every stored tensor whose name and shape match into ``module``; return
    (parameter elements copied, parameter elements in the module)."""
    own = module.state_dict()
    params = dict(module.named_parameters())
    copied = 0
    with torch.no_grad():
        for name, tensor in stored.items():
            if name in own and own[name].shape == tensor.shape:
                own[name].copy_(tensor)
                copied += tensor.numel() if name in params else 0
    return copied, sum(p.numel() for p in params.values())


def _state(module: nn.Module) -> State:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _snapshot(model: nn.Module) -> dict[str, State]:
    """The stem and every cell of a trained network, keyed by slot."""
    cells = {"stem": _state(model.stem)}
    for code, width, cell in model.cell_slots():
        cells.setdefault(slot_key(code, width), _state(cell))  # the first cell of a type at a width
    return cells


class CellWeightStore:
    """The evaluator's WeightSource for the cells family (see module doc)."""

    def __init__(self, task: Task, space: CellsSpace, train_settings: TrainSettings, path: Path,
                 supernet_epochs: int = 5, refresh_every: int = 10, enabled: bool = True, *,
                 keep_best: int = 10, seed: int = 0):
        self.task, self.space, self.train_settings = task, space, train_settings
        self.path, self.enabled, self.seed = Path(path), enabled, seed
        self.supernet_epochs, self.refresh_every, self.keep_best = supernet_epochs, max(1, refresh_every), keep_best
        self.slots: dict[str, State] = {}
        self.best: list[dict[str, Any]] = []  # {"acc", "loss", "id", "cells"}, best first
        self.evaluations = 0
        self.refreshes = 0
        self.pending: dict[str, Any] | None = None
        self.supernet_info: dict[str, Any] = {}
        self.last_fraction = 0.0
        self._ready = False

    # --- the WeightSource protocol ---
    def initialise(self, model: nn.Module, genome: Any) -> bool:
        """Start ``model``'s stem and cells from the stored weights; True if anything was copied."""
        self.last_fraction = 0.0
        if not self.enabled or not hasattr(model, "cell_slots"):
            return False
        self._ensure_ready()
        if self.pending is not None:
            if self.pending["id"] == getattr(genome, "id", None):
                self.pending = None  # the same evaluation again after a crash: it replaces itself
            else:
                self._commit()
        copied, _ = copy_matching(model.stem, self.slots.get("stem", {}))
        for code, width, cell in model.cell_slots():
            copied += copy_matching(cell, self.slots.get(slot_key(code, width), {}))[0]
        total = sum(p.numel() for p in model.parameters())
        self.last_fraction = copied / total if total else 0.0
        return copied > 0

    def update(self, model: nn.Module, genome: Any, metrics: dict[str, Any]) -> None:
        """Note a trained network; the evaluation counts once the next one starts (see module doc)."""
        if not self.enabled or not hasattr(model, "cell_slots"):
            return
        metrics["inherited_fraction"] = round(self.last_fraction, 4)
        self.pending = {"id": getattr(genome, "id", ""), "acc": float(metrics.get("val_acc", 0.0)),
                        "loss": float(metrics.get("val_loss", float("inf"))), "cells": _snapshot(model)}
        self.save()

    # --- refresh ---
    def _commit(self) -> None:
        entry, self.pending = self.pending, None
        assert entry is not None
        self.evaluations += 1
        self.best.append(entry)
        self.best.sort(key=lambda e: (-e["acc"], e["loss"]))  # stable: earlier first on ties
        del self.best[self.keep_best:]
        if self.evaluations % self.refresh_every == 0:
            self.refresh()

    def refresh(self) -> list[str]:
        """Paper steps 1-4: best individual first, then the next best, each updating the slots
        no better individual has updated in this round. Returns the slots updated."""
        updated: list[str] = []
        for entry in self.best:
            for key, state in entry["cells"].items():
                if key not in updated:
                    self.slots[key] = {**self.slots.get(key, {}), **state}
                    updated.append(key)
        self.refreshes += 1
        return updated

    # --- supernet and persistence ---
    @property
    def levels(self) -> int:
        """Width levels an individual can use: one more than the most reductions (2k < N)."""
        return (self.space.max_cells - 1) // 2 + 1

    def supernet(self, level: int = 0) -> SuperNet:
        plans = {code: CellPlan(code, 0, 0, c.nodes, output_nodes(c.nodes, c.rule), c.reduction)
                 for code, c in published_cells().items()}
        s = self.space
        reductions = [plans[c] for c in REDUCTION_CODES] if level < self.levels - 1 else []
        return SuperNet([plans[c] for c in NORMAL_CODES], reductions, s.input_shape, s.n_classes,
                        s.channels * 2**level, s.stem_size)

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        if not self._load():
            self._train_supernet()
            self.save()
        self._ready = True

    def _train_supernet(self) -> None:
        """Train the supernet of every width level (seeded, without touching the global RNG)."""
        task = self.task
        settings = self.train_settings.model_copy(update={"epochs": self.supernet_epochs})
        self.slots, levels = {}, []
        for level in range(self.levels):
            start = time.perf_counter()
            with torch.random.fork_rng():
                torch.manual_seed(self.seed + level)
                net = self.supernet(level)
                result = train(net, task.X_train, task.y_train, task.X_val, task.y_val, settings,
                               torch.Generator().manual_seed(self.seed + level))
            val_acc = float((predict_logits(net, task.X_val).argmax(1) == task.y_val).float().mean())
            self.slots.setdefault("stem", _state(net.stem))  # level 0's stem has the individuals' width
            for code, width, cell in net.cell_slots():
                self.slots[slot_key(code, width)] = _state(cell)
            levels.append({"epochs": result.epochs, "val_acc": val_acc, "val_loss": result.best_val_loss,
                           "seconds": time.perf_counter() - start, "params": sum(p.numel() for p in net.parameters())})
        self.supernet_info = {"seconds": sum(x["seconds"] for x in levels), "levels": levels}

    def _identity(self) -> dict[str, Any]:
        s = self.space
        return {"version": VERSION, "input_shape": list(s.input_shape), "n_classes": s.n_classes,
                "channels": s.channels, "stem_size": s.stem_size, "levels": self.levels,
                "supernet_epochs": self.supernet_epochs, "seed": self.seed}

    def save(self) -> None:
        """Atomic: a crash mid-write leaves the previous file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save({"identity": self._identity(), "slots": self.slots, "best": self.best, "pending": self.pending,
                    "evaluations": self.evaluations, "refreshes": self.refreshes, "supernet": self.supernet_info}, tmp)
        os.replace(tmp, self.path)

    def _load(self) -> bool:
        """Reload a saved store made with the same settings; False if there is none."""
        if not self.path.is_file():
            return False
        data = torch.load(self.path, weights_only=True)
        if data.get("identity") != self._identity():
            return False
        self.slots, self.best, self.pending = data["slots"], data["best"], data["pending"]
        self.evaluations, self.refreshes, self.supernet_info = data["evaluations"], data["refreshes"], data["supernet"]
        return True
