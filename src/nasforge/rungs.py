"""Multi-fidelity bookkeeping of one run: which rung each candidate trains to, what it
reached, and where its training stands, kept so that a killed search resumes exactly.

The decisions are :class:`nasforge.halving.Halving`'s, keyed by ask index (an ask keeps its
index when an interrupted attempt is re-run). Every event that changes them (a rung
finished, a rung failed, the last bracket closed because the budget is spent) gets the next
number of one sequence and is stored: a rung in the trial's ``rungs`` attribute, a close as a
run attribute. On resume :meth:`Rungs.replay` starts every stored ask in ask order and
replays the events in sequence order, so the scheduler is in the state it was in; the
decision each live trial last received says what to do with it (train its next rung from
its saved state, stop it, complete it, or leave it waiting for its bracket or, with asha, for its
rung's first eta results).

After a rung, before it is stored, the candidate's files are written: its weights (the
restored best, as after full training) where a fully trained candidate's are
(``models/trial-N.pt``) unless it trains on at once, and its training state (current weights,
optimizer, generators, early-stopping counters) in ``models/trial-N.state.pt`` unless it
stops or completes there (a candidate left waiting gets both). A kill between
the files and the stored rung re-trains nothing when the state was written (training from a
state already at the rung's epoch trains zero epochs); a candidate that was stopping or
completing trains that rung again from its previous state, with the same result.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .halving import Decision, Halving, Result, SchedulerSettings, rungs
from .objectives import Goal
from .storage import RunStore, TrialRecord

CLOSED = "halving_closed_at"  # run attribute: the sequence numbers at which the last bracket was closed


class Rungs:
    def __init__(self, settings: SchedulerSettings, max_epochs: int, goal: Goal, store: RunStore):
        self.epochs = rungs(settings.min_epochs, max_epochs, settings.eta)
        self.halving = Halving(settings.kind, self.epochs, settings.eta, settings.promote)
        self.goal, self.store = goal, store
        self.seq = 0
        self.first_rung: dict[int, int] = {}  # ask -> the rung it started at
        self.closed = False  # the last bracket was closed and no candidate started since

    def describe(self) -> str:
        return f"{self.halving.mode} over rungs of {', '.join(map(str, self.epochs))} epochs (eta {self.halving.eta})"

    # --- the live run ---
    def start(self, ask: int) -> int:
        """The rung index a new candidate (or a re-run of an interrupted ask) trains to first."""
        if ask not in self.first_rung:
            self.first_rung[ask] = self.halving.start(ask)
            self.closed = False
        return self.first_rung[ask]

    def report(self, ask: int, rung: int, metrics: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[Decision]]:
        """A rung finished (``metrics``) or failed (None): the entry to store, and the decisions."""
        entry: dict[str, Any] = {"rung": rung, "epochs": self.epochs[rung], "seq": self.seq}
        self.seq += 1
        if metrics is None:
            entry["failed"] = True
        else:
            entry["metrics"] = dict(metrics)
        return entry, self.halving.report(ask, rung, self._result(ask, entry))

    def close(self) -> list[Decision]:
        """No candidate will come any more: the last bracket decides with the members it has."""
        self.store.set(CLOSED, [*self._closes(), [self.seq, len(self.first_rung)]])
        self.seq += 1
        self.closed = True
        return self.halving.close_brackets()

    def _closes(self) -> list[list[int]]:
        """[sequence number, candidates started by then] of each close."""
        return [list(c) for c in self.store.get(CLOSED) or []]

    def _result(self, ask: int, entry: Mapping[str, Any]) -> Result | None:
        if entry.get("failed"):
            return None
        metrics = entry["metrics"]
        return Result(ask, self.goal.ranking_point(metrics), self.goal.violation(metrics))

    # --- resume ---
    def replay(self, records: list[TrialRecord]) -> dict[int, tuple[int, str]]:
        """Rebuild the scheduler from the stored trials; the last decision each ask received,
        with the rung it was about: ask -> (rung index, "continue" | "stop" | "complete")."""
        asks = sorted({r.ask_index for r in records if r.genome and r.state != "skipped"})
        position = {ask: i for i, ask in enumerate(asks)}
        events = sorted((entry["seq"], r.ask_index, entry) for r in records for entry in r.rungs)
        closes = self._closes()
        current: dict[int, int] = {}
        last: dict[int, tuple[int, str]] = {}

        def start_up_to(count: int) -> None:  # candidates start in ask order, as they did
            while len(self.first_rung) < count and len(self.first_rung) < len(asks):
                self.start(asks[len(self.first_rung)])

        def note(decisions: list[Decision]) -> None:
            for ask, what in decisions:
                last[ask] = (current.get(ask, self.first_rung.get(ask, 0)), what)

        def close(at: int, started: int) -> None:
            start_up_to(started)
            self.closed, self.seq = True, at + 1
            note(self.halving.close_brackets())

        for seq, ask, entry in events:
            while closes and closes[0][0] < seq:
                close(*closes.pop(0))
            start_up_to(position[ask] + 1)
            current[ask] = entry["rung"]
            self.seq = seq + 1
            note(self.halving.report(ask, entry["rung"], self._result(ask, entry)))
        while closes:
            close(*closes.pop(0))
        start_up_to(len(asks))
        return last


__all__ = ["CLOSED", "Rungs"]
