"""Challenge bundles in EvalAI's format: read, validate and describe them. Pure Python, no Django."""

from .errors import BundleError, Problem
from .model import ChallengeConfig, DatasetSplit, Leaderboard, Phase, PhaseSplit
from .reader import Bundle, ScriptArchive, parse_config, read_bundle
from .schema import json_schema
from .source import Limits

__all__ = [
    "Bundle", "BundleError", "ChallengeConfig", "DatasetSplit", "Leaderboard", "Limits", "Phase",
    "PhaseSplit", "Problem", "ScriptArchive", "json_schema", "parse_config", "read_bundle",
]  # fmt: skip
