"""Sorting a config's keys into known, ignored and unknown before the models see them.

EvalAI drops unknown keys without a word, so a typo such as ``showeceution_time`` silently does
nothing. Assay keeps accepting such configs but warns, naming the closest known key.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel

from .errors import Problem
from .model import AWS_INFRA_KEYS, AWS_KEYS_WITH_EFFECT, IGNORED_PHASE_KEYS, ChallengeConfig, Phase
from .yamlsafe import LineMap, Path


def field_names(model: type[BaseModel]) -> dict[str, str]:
    """Config key → Python attribute name (they differ where a key shadows a pydantic name)."""
    return {(info.alias or name): name for name, info in model.model_fields.items()}


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model inside ``X``, ``X | None``, ``list[X]`` or ``dict[str, X]``, and which shape."""
    origin = typing.get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "one"
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found, shape = _nested_model(arg)
            if found:
                return found, shape
    if origin is list:
        found, _ = _nested_model(typing.get_args(annotation)[0])
        return found, "list"
    if origin is dict:
        found, _ = _nested_model(typing.get_args(annotation)[1])
        return found, "dict"
    return None, ""


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path)


def sort_keys(data: dict, lines: LineMap, file: str) -> tuple[dict, list[Problem]]:
    """Return a copy of ``data`` the models can take, and warnings for what was set aside."""
    warnings: list[Problem] = []
    cleaned = _walk(ChallengeConfig, data, (), lines, file, warnings)
    infra = {k: cleaned.pop(k) for k in list(cleaned) if k in AWS_INFRA_KEYS}
    if infra:
        cleaned["infrastructure"] = infra
    ignored = [k for k in infra if k not in AWS_KEYS_WITH_EFFECT]
    if ignored:
        warnings.append(
            Problem(
                "aws_setting_ignored",
                f"{', '.join(sorted(ignored))}: EvalAI AWS deployment setting(s), kept but without effect on Assay",
                file=file,
                line=lines.line_for((sorted(ignored, key=lambda k: lines.get((k,), 0))[0],)),
                key=", ".join(sorted(ignored)),
                severity="warning",
            )
        )
    return cleaned, warnings


def _walk(model: type[BaseModel], data: Any, path: Path, lines: LineMap, file: str, warnings: list[Problem]) -> Any:
    if not isinstance(data, dict):
        return data  # the model reports the wrong type with its line
    known = field_names(model)
    allowed = set(known)
    if model is ChallengeConfig:
        allowed |= set(AWS_INFRA_KEYS)
        allowed.discard("infrastructure")
    out: dict = {}
    for key, value in data.items():
        here = (*path, key)
        if model is Phase and key in IGNORED_PHASE_KEYS:
            continue  # EvalAI ignores these too; configs copied from its docs set them
        if not isinstance(key, str) or key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            warnings.append(
                Problem(
                    "unknown_key",
                    f"unknown key {key!r} is ignored{hint}",
                    file=file,
                    line=lines.line_for(here),
                    key=_dotted(here),
                    severity="warning",
                )
            )
            continue
        attr = known.get(key)
        nested, shape = _nested_model(model.model_fields[attr].annotation) if attr else (None, "")
        if nested is None:
            out[key] = value
        elif shape == "one":
            out[key] = _walk(nested, value, here, lines, file, warnings)
        elif shape == "list" and isinstance(value, list):
            out[key] = [_walk(nested, v, (*here, i), lines, file, warnings) for i, v in enumerate(value)]
        elif shape == "dict" and isinstance(value, dict):
            out[key] = {k: _walk(nested, v, (*here, k), lines, file, warnings) for k, v in value.items()}
        else:
            out[key] = value
    return out
