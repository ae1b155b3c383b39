"""The diabetic-retinopathy grading audit's evaluation script, in EvalAI's contract: it exposes ``evaluate``."""

from .main import evaluate

__all__ = ["evaluate"]
