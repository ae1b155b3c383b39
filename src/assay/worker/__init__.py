"""The Assay worker: claims jobs over HTTP, evaluates them in sandboxes, reports results. No Django."""

from .client import LeaseLostError, WorkerClient
from .loop import Worker

__all__ = ["LeaseLostError", "Worker", "WorkerClient"]
