"""Evaluation script of the breast-cancer audit, in EvalAI's contract: the package exposes ``evaluate``."""

from .main import evaluate

__all__ = ["evaluate"]
