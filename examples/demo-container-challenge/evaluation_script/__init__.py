"""Demo container challenge's evaluation script in EvalAI's contract: the package exposes ``evaluate``."""

from .main import evaluate

__all__ = ["evaluate"]
