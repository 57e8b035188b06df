"""Registries: the one place a part (strategy, space family, evaluator) says it exists.

A part is a module in its package that decorates its class with ``REGISTRY.register``; the
registry imports every module of the package the first time it is asked a name, so a new
strategy is one new file and nothing in the centre (study, config, CLI, report) names it.
Asking for a name nobody registered is a one-line :class:`NasforgeError` listing the known
ones. Modules found this way must import cheaply (no torch at import: the CLI lists the
parts and their settings in ``--help``, which must start instantly).
"""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Generic, TypeVar

from .errors import NasforgeError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind, discovered from the modules of ``package``."""

    def __init__(self, kind: str, package: str):
        self.kind, self.package = kind, package
        self._entries: dict[str, T] = {}
        self._discovered = False

    def register(self, entry: T) -> T:
        """Class decorator: ``entry.name`` is the name users type."""
        name = getattr(entry, "name")
        known = self._entries.get(name)
        if known is not None and known is not entry:
            raise RuntimeError(f"two {self.kind}s are named {name!r}: {known!r} and {entry!r}")
        self._entries[name] = entry
        return entry

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        package = importlib.import_module(self.package)
        for module in pkgutil.iter_modules(package.__path__):
            if not module.name.startswith("_"):
                importlib.import_module(f"{self.package}.{module.name}")

    def get(self, name: str) -> T:
        self._discover()
        if name not in self:
            raise NasforgeError(f"unknown {self.kind} {name!r}; choose from {', '.join(self.names())}")
        return self._entries[name]

    def default(self) -> T:
        """The part a configuration gets when it names none (the one that sets ``is_default``)."""
        found = [entry for entry in self if getattr(entry, "is_default", False)]
        if len(found) != 1:
            raise RuntimeError(f"{len(found)} {self.kind}s say they are the default; exactly one must")
        return found[0]

    def names(self) -> list[str]:
        self._discover()
        return list(self._entries)

    def __iter__(self) -> Iterator[T]:
        self._discover()
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        self._discover()
        return isinstance(name, str) and name in self._entries
