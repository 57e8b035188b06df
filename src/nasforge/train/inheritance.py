"""TS-ENAS's cell-based weight inheritance (SPEC §2, seed 004 Section IV-B2).

A supernet holding all 8 published cells is trained once and its weights are stored per
cell type. A new individual starts each of its cells from the stored weights of that cell
type (its stem and classifier likewise), then trains briefly. Every ``refresh_every``
evaluations the stored weights are refreshed from the best individuals: the best one first
updates every cell type it contains, then the next best the types not yet updated, and so
on (the paper's steps 1-4).

Our choices (**ours**), where the paper is silent:
- A cell's tensors depend on its width (doubled at every reduction) and its 1x1 input
  preprocessing on what feeds it, so weights are stored per (cell type, width) "slot", each
  tensor under its name and shape; a new cell gets every stored tensor whose name and shape
  match. The fraction of the network's parameters copied is recorded as
  ``inherited_fraction``; the classifier comes from the slot of the network's last cell.
- Supernet, ``mode="sampled"`` (default): the supernet is the bank of all slots, trained
  one-shot style (SPOS, the paper's ref. [17]): every batch builds a random network of the
  space (Algorithm 3) on the shared tensors and trains it, so every cell learns in the
  contexts individuals use it in. ``mode="stacked"`` is the paper's literal supernet: the
  8 cells stacked in one fixed network per width (nasforge.nets.cell_model.SuperNet).
  Measured on digits-images: a stacked supernet learned (val acc 0.97) but networks that
  wire its cells differently started at chance and trained no faster than from scratch.
- After copying, batch-norm statistics are recalibrated on training data (the shared ones
  are averages over other networks).
- "The best individuals" are the ``keep_best`` best evaluated so far by validation accuracy
  (then validation loss), whatever the objective: the store does not see the population.

Processes: ``initialise`` changes nothing, so it may run on a pickled copy in a worker
(pickling prepares the store first, so the supernet is trained once, in the search's
process); ``update`` runs in the search's process in the order of tells.

Resume: the store is saved to ``path`` after every update; the newest evaluation is kept
pending until the next update, so an evaluation that the search re-runs after a crash (same
genome) replaces it instead of being counted twice. The supernet is trained only when no
saved store exists.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import Task
from ..files import save_torch
from ..nets.cell_model import SuperNet
from ..spaces.cell_plan import CellPlan
from ..spaces.cells import NORMAL_CODES, REDUCTION_CODES, CellsSpace, output_nodes, published_cells
from .settings import TrainSettings
from .trainer import make_optimizer, predict_logits

VERSION = 2
MODES = ("sampled", "stacked")
State = dict[str, torch.Tensor]  # "name:shape" -> tensor


def slot_key(code: int, width: int) -> str:
    return f"{code}@{width}"


def head_key(code: int, width: int) -> str:
    """The classifier stored for networks whose last cell is of this type and width."""
    return f"head:{code}@{width}"


def tensor_key(name: str, tensor: torch.Tensor) -> str:
    return f"{name}:{'x'.join(str(n) for n in tensor.shape)}"


def parts(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(slot, module) of everything inheritable: the stem, each cell, the classifier."""
    found = [("stem", model.stem)] + [(slot_key(c, w), cell) for c, w, cell in model.cell_slots()]
    if hasattr(model, "heads"):  # the stacked supernet: one head per cell
        return found + [(head_key(c, w), h) for (c, w, _), h in zip(model.cell_slots(), model.heads)]
    code, width, _ = model.cell_slots()[-1]
    return found + [(head_key(code, width), model.classifier)]


def state_of(module: nn.Module) -> State:
    return {tensor_key(k, v): v.detach().clone() for k, v in module.state_dict().items()}


def copy_matching(module: nn.Module, stored: State) -> tuple[int, int]:
    """Copy every stored tensor whose name and shape match into ``module``; return
    (parameter elements copied, parameter elements in the module)."""
    params = dict(module.named_parameters())
    copied = 0
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            source = stored.get(tensor_key(name, tensor))
            if source is not None:
                tensor.copy_(source)
                copied += tensor.numel() if name in params else 0
    return copied, sum(p.numel() for p in params.values())


def snapshot(model: nn.Module) -> dict[str, State]:
    """Every part of a network by slot (of two cells with one slot, the first)."""
    taken: dict[str, State] = {}
    for slot, module in parts(model):
        taken.setdefault(slot, state_of(module))
    return taken


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, X: torch.Tensor, batch_size: int = 256) -> None:
    """Set every batch norm's running statistics to their average over ``X`` (train mode)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    for i in range(0, len(X) - 1, batch_size):  # no batch of one: a 1x1 map cannot normalise it
        model(X[i : i + batch_size])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.eval()


class SharedTensors:
    """The sampled supernet: one tensor per (slot, name, shape), bound into networks as they
    are built so that every network trains the same weights."""

    def __init__(self, settings: TrainSettings):
        self.settings = settings
        self.tensors: dict[tuple[str, str], torch.Tensor] = {}
        self.optimizer: torch.optim.Optimizer | None = None

    def bind(self, model: nn.Module) -> None:
        new: list[nn.Parameter] = []
        for slot, module in parts(model):
            for kind, table in (("p", dict(module.named_parameters())), ("b", dict(module.named_buffers()))):
                for name, tensor in table.items():
                    key = (slot, tensor_key(name, tensor))
                    if key not in self.tensors:
                        self.tensors[key] = tensor
                        new += [tensor] if kind == "p" else []
                    prefix, _, attr = name.rpartition(".")
                    owner = module.get_submodule(prefix) if prefix else module
                    (owner._parameters if kind == "p" else owner._buffers)[attr] = self.tensors[key]
        if new and self.optimizer is None:
            self.optimizer = make_optimizer(nn.ParameterList(new), self.settings)
        elif new:
            self.optimizer.add_param_group({"params": new})

    def slots(self) -> dict[str, State]:
        out: dict[str, State] = {}
        for (slot, key), tensor in self.tensors.items():
            out.setdefault(slot, {})[key] = tensor.detach().clone()
        return out


def _train_batches(X: torch.Tensor, batch_size: int, generator: torch.Generator):
    order = torch.randperm(len(X), generator=generator)
    for i in range(0, len(X), batch_size):
        idx = order[i : i + batch_size]
        if len(idx) > 1:  # batch norm cannot train on one sample of a 1x1 map
            yield idx


class CellWeightStore:
    """The evaluator's WeightSource for the cells family (see module doc)."""

    def __init__(self, task: Task, space: CellsSpace, train_settings: TrainSettings, path: Path,
                 supernet_epochs: int = 20, refresh_every: int = 10, enabled: bool = True, *,
                 keep_best: int = 10, seed: int = 0, mode: str = "sampled", calibration: int = 512,
                 batches_per_network: int = 4):
        if mode not in MODES:
            raise ValueError(f"supernet mode {mode!r}; choose from {', '.join(MODES)}")
        self.task, self.space, self.train_settings = task, space, train_settings
        self.path, self.enabled, self.seed, self.mode = Path(path), enabled, seed, mode
        self.supernet_epochs, self.refresh_every, self.keep_best = supernet_epochs, max(1, refresh_every), keep_best
        self.calibration = calibration
        self.batches_per_network = max(1, batches_per_network)  # sampled mode: batches before a new network
        self.slots: dict[str, State] = {}
        self.best: list[dict[str, Any]] = []  # {"id", "acc", "loss", "cells"}, best first
        self.evaluations = self.refreshes = 0
        self.pending: dict[str, Any] | None = None
        self.supernet_info: dict[str, Any] = {}
        self.last_fraction = 0.0
        self._ready = False

    # --- the WeightSource protocol ---
    def initialise(self, model: nn.Module, genome: Any) -> bool:
        """Start ``model`` from the stored weights; True if anything was copied. Changes no
        state (it may run on a copy of the store in a worker process)."""
        self.last_fraction = 0.0
        if not self.enabled or not hasattr(model, "cell_slots"):
            return False
        self.prepare()
        copied = sum(copy_matching(module, self.slots.get(slot, {}))[0] for slot, module in parts(model))
        total = sum(p.numel() for p in model.parameters())
        self.last_fraction = copied / total if total else 0.0
        if copied:
            recalibrate_batch_norm(model, self.task.X_train[: self.calibration])
        return copied > 0

    def update(self, model: nn.Module, genome: Any, metrics: dict[str, Any]) -> None:
        """Note a trained network (in the search's own process, in the order of tells). It is
        kept pending and counts when the next one arrives, unless that is the same genome:
        then it is the same evaluation re-run after a crash and replaces it."""
        if not self.enabled or not hasattr(model, "cell_slots"):
            return
        self.prepare()
        metrics["inherited_fraction"] = round(self.fraction(model), 4)  # the slots it was started from
        genome_id = getattr(genome, "id", "")
        if self.pending is not None and self.pending["id"] != genome_id:
            self._commit()
        self.pending = {"id": genome_id, "acc": float(metrics.get("val_acc", 0.0)),
                        "loss": float(metrics.get("val_loss", float("inf"))), "cells": snapshot(model)}
        self.save()

    def fraction(self, model: nn.Module) -> float:
        """The share of ``model``'s parameters the current store would initialise."""
        found = 0
        for slot, module in parts(model):
            stored = self.slots.get(slot, {})
            found += sum(p.numel() for n, p in module.named_parameters() if tensor_key(n, p) in stored)
        total = sum(p.numel() for p in model.parameters())
        return found / total if total else 0.0

    def prepare(self) -> None:
        """Load the saved store, or train the supernet and save it (once)."""
        if self._ready:
            return
        if not self._load():
            start = time.perf_counter()
            with torch.random.fork_rng():  # seeded, and the caller's random state is untouched
                torch.manual_seed(self.seed)
                self._train_sampled() if self.mode == "sampled" else self._train_stacked()
            self.supernet_info["seconds"] = time.perf_counter() - start
            self.save()
        self._ready = True

    def __getstate__(self) -> dict[str, Any]:
        """What a worker process gets: the prepared slots, not the bookkeeping of the best."""
        if self.enabled:
            self.prepare()
        return {**self.__dict__, "best": [], "pending": None}

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
            for slot, state in entry["cells"].items():
                if slot not in updated:
                    self.slots[slot] = {**self.slots.get(slot, {}), **state}
                    updated.append(slot)
        self.refreshes += 1
        return updated

    # --- the supernet ---
    def _train_sampled(self) -> None:
        """One-shot training: each batch trains a random network of the space on shared tensors."""
        task, s = self.task, self.train_settings
        shared, rng = SharedTensors(s), np.random.default_rng(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        losses: list[float] = []
        networks, model = 0, None
        for _ in range(self.supernet_epochs):
            losses.clear()
            for step, idx in enumerate(_train_batches(task.X_train, s.batch_size, generator)):
                if model is None or step % self.batches_per_network == 0:
                    model = self.space.sample(rng).build(task.input_shape, task.n_outputs)
                    shared.bind(model)
                    networks += 1
                model.train()
                loss = F.cross_entropy(model(task.X_train[idx]), task.y_train[idx])
                shared.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                shared.optimizer.step()
                losses.append(float(loss.detach()))
        self.slots = shared.slots()
        probe = [self.space.sample(rng) for _ in range(3)]  # how good an inherited start is
        accs = []
        for genome in probe:
            model = genome.build(task.input_shape, task.n_outputs)
            for slot, module in parts(model):
                copy_matching(module, self.slots.get(slot, {}))
            recalibrate_batch_norm(model, task.X_train[: self.calibration])
            accs.append(float((predict_logits(model, task.X_val).argmax(1) == task.y_val).float().mean()))
        self.supernet_info = {"mode": "sampled", "networks": networks, "epochs": self.supernet_epochs,
                              "last_epoch_loss": float(np.mean(losses)), "inherited_val_acc": accs}

    def stacked_supernet(self, level: int) -> SuperNet:
        plans = {code: CellPlan(code, 0, 0, c.nodes, output_nodes(c.nodes, c.rule), c.reduction)
                 for code, c in published_cells().items()}
        s, levels = self.space, (self.space.max_cells - 1) // 2 + 1  # one more than the most reductions
        reductions = [plans[c] for c in REDUCTION_CODES] if level < levels - 1 else []
        return SuperNet([plans[c] for c in NORMAL_CODES], reductions, s.input_shape, s.n_classes,
                        s.channels * 2**level, s.stem_size)

    def _train_stacked(self) -> None:
        """The paper's supernet, one per width level, with a head per cell (deep supervision)."""
        task, s = self.task, self.train_settings
        generator = torch.Generator().manual_seed(self.seed)
        self.slots, accs = {}, []
        for level in range((self.space.max_cells - 1) // 2 + 1):
            net = self.stacked_supernet(level)
            opt = make_optimizer(net, s)
            for _ in range(self.supernet_epochs):
                net.train()
                for idx in _train_batches(task.X_train, s.batch_size, generator):
                    loss = torch.stack([F.cross_entropy(out, task.y_train[idx]) for out in net.head_logits(task.X_train[idx])]).mean()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
            recalibrate_batch_norm(net, task.X_train[: self.calibration])
            accs.append(float((predict_logits(net, task.X_val).argmax(1) == task.y_val).float().mean()))
            for slot, state in snapshot(net).items():
                self.slots.setdefault(slot, state)  # level 0's stem has the individuals' width
        self.supernet_info = {"mode": "stacked", "epochs": self.supernet_epochs, "level_val_acc": accs}

    # --- persistence ---
    def _identity(self) -> dict[str, Any]:
        s = self.space
        return {"version": VERSION, "input_shape": list(s.input_shape), "n_classes": s.n_classes, "mode": self.mode,
                "channels": s.channels, "stem_size": s.stem_size, "cells": [s.min_cells, s.max_cells],
                "supernet_epochs": self.supernet_epochs, "seed": self.seed,
                "batches_per_network": self.batches_per_network}

    def save(self) -> None:
        """Atomic: a crash mid-write leaves the previous file."""
        save_torch({"identity": self._identity(), "slots": self.slots, "best": self.best, "pending": self.pending,
                    "evaluations": self.evaluations, "refreshes": self.refreshes, "supernet": self.supernet_info}, self.path)

    def _load(self) -> bool:
        """Reload a saved store made with the same settings; False if there is none."""
        if not self.path.is_file():
            return False
        data = torch.load(self.path, weights_only=True, map_location="cpu")
        if data.get("identity") != self._identity():
            return False
        self.slots, self.best, self.pending = data["slots"], data["best"], data["pending"]
        self.evaluations, self.refreshes, self.supernet_info = data["evaluations"], data["refreshes"], data["supernet"]
        return True
