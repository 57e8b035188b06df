"""Command-line flags read off the settings models, so flags, config keys and docs agree.

A settings field becomes a flag by carrying ``json_schema_extra=flag("--name")``; its help
is the field's description (and its default), its type and choices come from the field's
annotation. :func:`flag_specs` walks a model and its nested settings models and yields one
:class:`FlagSpec` per flag with the dotted config path it sets; a flag several models
declare (``--population`` for three strategies) is one flag whose help names them.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo


def flag(name: str, *, group: str | None = None, const: Any = None, parse: str | None = None,
         help: str | None = None) -> dict[str, Any]:
    """Mark a settings field as the CLI flag ``name`` (``const``: a switch that stores it;
    ``parse``: a named parser, see ``PARSERS``; ``group``: the help section, when it is not
    the model's; ``help``: when the switch needs other words than the field's description)."""
    extra: dict[str, Any] = {"flag": name}
    if help is not None:
        extra["help"] = help
    if group is not None:
        extra["group"] = group
    if const is not None:
        extra["const"] = const
    if parse is not None:
        extra["parse"] = parse
    return extra


def csv_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def image_size(text: str) -> list[int]:
    import argparse

    try:
        h, _, w = text.lower().partition("x")
        return [int(h), int(w or h)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must look like 32x32, got {text!r}") from None


PARSERS: dict[str, Callable[[str], Any]] = {"size": image_size}


@dataclass
class FlagSpec:
    flag: str
    path: str  # dotted config path, e.g. "train.epochs"
    group: str
    help: str
    parse: Callable[[str], Any] | None = None
    choices: list[str] | None = None
    const: Any = None
    owners: list[str] = field(default_factory=list)  # strategies declaring it, for shared strategy flags

    @property
    def metavar(self) -> str:
        return {int: "N", float: "X", csv_list: "A,B,..."}.get(self.parse, self.path.rsplit(".", 1)[-1].upper())


def _unwrap(annotation: Any) -> Any:
    """``Optional[X]`` -> ``X``."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _parser(annotation: Any) -> tuple[Callable[[str], Any] | None, list[str] | None]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) is Literal:
        return str, [str(a) for a in typing.get_args(annotation)]
    if typing.get_origin(annotation) is list:
        return csv_list, None
    if annotation in (int, float, str):
        return annotation, None
    return str, None


def _help(info: FieldInfo) -> str:
    text = info.description or ""
    if info.is_required():
        return text
    default = info.get_default(call_default_factory=True)
    if default not in (None, [], "") and not isinstance(default, bool) and "default" not in text:
        text += f" (default {default})"
    return text


def _spec(path: str, info: FieldInfo, group: str) -> FlagSpec:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    parse, choices = _parser(info.annotation)
    if "parse" in extra:
        parse = PARSERS[extra["parse"]]
    return FlagSpec(str(extra["flag"]), path, str(extra.get("group", group)), extra.get("help") or _help(info), parse, choices,
                    extra.get("const"))


def flag_specs(model: type[BaseModel], prefix: str = "", group: str = "options") -> Iterator[FlagSpec]:
    """Every flag in ``model`` and the settings models nested in it (a field whose own
    ``json_schema_extra`` gives ``{"group": ...}`` names the help section of its flags)."""
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "flag" in extra:
            yield _spec(path, info, group)
            continue
        inner = _unwrap(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from flag_specs(inner, f"{path}.", str(extra.get("group", group)))


def merge_specs(specs: Iterable[tuple[str, FlagSpec]]) -> list[FlagSpec]:
    """One spec per flag; a flag several parts declare names them in its help, each with its
    own words where they differ ("evolution: ...; ts-enas: ...")."""
    merged: dict[str, FlagSpec] = {}
    helps: dict[str, list[tuple[str, str]]] = {}
    for owner, spec in specs:
        known = merged.setdefault(spec.flag, spec)
        if known.path != spec.path:
            raise RuntimeError(f"flag {spec.flag} sets both {known.path} and {spec.path}")
        if owner:
            known.owners.append(owner)
            helps.setdefault(spec.flag, []).append((owner, spec.help))
    for flag_name, pairs in helps.items():
        texts = {text for _, text in pairs}
        spec = merged[flag_name]
        spec.help = (f"{', '.join(spec.owners)}: {pairs[0][1]}" if len(texts) == 1
                     else "; ".join(f"{owner}: {text}" for owner, text in pairs))
    return list(merged.values())
