"""Sandboxed, warm, optionally chunked execution of EvalAI-compatible evaluation scripts.

Pure Python: never imports Django or ``assay.server`` (a host runs a remote worker with this alone).

    from assay.evaluation import EvaluationJob, EvaluationLimits, EvaluatorPool
    with EvaluatorPool(workdir=Path("var/eval")) as pool:
        outcome = pool.evaluate(EvaluationJob(key=..., script_zip=..., annotation_file=...,
                                              submission_file=..., phase_codename="dev"))

Modules: ``contract`` (job, outcome, result checks), ``limits``, ``pool`` (warm evaluators),
``evaluator`` (one sandboxed process, parent side), ``evaluator_child`` (the code inside the sandbox),
``sandbox`` (bubblewrap detection and command line), ``cgroups``, ``venvs`` (requirements.txt
environments), ``scripts`` (script extraction), ``handles`` (one job's runs, stoppable alone), ``safezip``,
``chunking``, ``dask_backend``.
"""

from .chunking import ChunkingSpec, split_submission
from .contract import ErrorKind, EvaluationJob, EvaluationOutcome, validate_output
from .handles import RunHandle
from .limits import EvaluationLimits
from .pool import EvaluatorPool
from .safezip import UnsafeZipError
from .sandbox import SandboxReport, SandboxUnavailable, detect_sandbox
from .venvs import SetupError

__all__ = [
    "ChunkingSpec", "ErrorKind", "EvaluationJob", "EvaluationLimits", "EvaluationOutcome", "EvaluatorPool",
    "RunHandle", "SandboxReport", "SandboxUnavailable", "SetupError", "UnsafeZipError", "detect_sandbox",
    "split_submission", "validate_output",
]  # fmt: skip
