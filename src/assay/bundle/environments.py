"""The Python environments evaluation scripts run in: EvalAI's worker stacks, as data.

Why: EvalAI's workers come with a scientific stack preinstalled (Cloud-CV/EvalAI
``requirements/worker_py3_*.txt``) and real challenge scripts import it without a requirements file.
Each stack here is that list at EvalAI's versions, or the nearest that install as wheels on Python 3.11
(the older stack keeps the py3.7/3.8 API: numpy < 1.24, so ``np.float`` still works), pinned with all
their dependencies so every worker builds the same environment. ``requests`` is added because EvalAI
scripts run inside its worker, whose own dependencies include it; Django and the rest of the worker's
packages are deliberately not provided (a script must not see the platform it runs on).

Django-free, so ``assay bundle validate`` (which warns about imports a stack lacks) needs nothing else;
:mod:`assay.evaluation.venvs` builds the environments from these lists.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from packaging.utils import canonicalize_name


@dataclass(frozen=True)
class Environment:
    """A named, pinned package set. ``modules``: the top-level import names it provides."""

    name: str
    summary: str
    requirements: tuple[str, ...]  # "distribution==version", every dependency included
    modules: frozenset[str]

    def pins(self) -> dict[str, str]:
        """Canonical distribution name → pinned version."""
        out = {}
        for line in self.requirements:
            name, _, version = line.partition("==")
            out[canonicalize_name(name)] = version
        return out


# Present in every environment: a venv's own pip and setuptools (a script's `pip install` needs pip).
VENV_MODULES = frozenset({"pip", "setuptools", "pkg_resources", "_distutils_hack"})
# Import names of the dependencies both stacks share.
_COMMON_MODULES = frozenset(
    {
        "numpy", "pandas", "sklearn", "scipy", "matplotlib", "mpl_toolkits", "pylab", "networkx",
        "pycocotools", "tqdm", "requests", "urllib3", "idna", "certifi", "PIL", "cycler", "kiwisolver",
        "fontTools", "contourpy", "pyparsing", "packaging", "dateutil", "pytz", "tzdata", "joblib",
        "threadpoolctl", "cloudpickle",
    }
)  # fmt: skip

EVALAI_PY39 = Environment(
    name="evalai-py3.9",
    summary="EvalAI's current worker stack (worker_py3_9.txt): numpy 1.26, pandas 2.2, scikit-learn 1.4, scipy 1.11",
    requirements=(
        "numpy==1.26.4",
        "pandas==2.2.3",
        "scikit-learn==1.4.2",
        "scipy==1.11.4",
        "matplotlib==3.8.4",
        "networkx==3.2.1",
        "pycocotools==2.0.7",
        "PyYAML==6.0.4",
        "tqdm==4.70.1",
        "requests==2.34.2",
        "certifi==2026.10.19.post1",
        "charset-normalizer==3.5.3",
        "cloudpickle==3.1.3",
        "contourpy==1.3.3",
        "cycler==0.12.1",
        "fonttools==4.68.0",
        "idna==3.20",
        "joblib==1.6.0",
        "kiwisolver==1.5.1",
        "packaging==26.4",
        "pillow==13.0.0",
        "pyparsing==3.3.3",
        "python-dateutil==4.0.0",
        "pytz==2026.6",
        "threadpoolctl==3.8.0",
        "tzdata==2026.6",
        "urllib3==2.8.0",
    ),  # fmt: skip
    modules=VENV_MODULES | _COMMON_MODULES | {"yaml", "_yaml", "charset_normalizer"},
)

EVALAI_PY37 = Environment(
    name="evalai-py3.7",
    summary="EvalAI's older worker stack (worker_py3_7/3_8.txt) with the py3.7 API: numpy 1.23 (np.float works), "
    "pandas 1.5, scikit-learn 1.1, scipy 1.9",
    requirements=(
        "numpy==1.23.5",
        "pandas==1.5.3",
        "scikit-learn==1.1.3",
        "scipy==1.9.3",
        "matplotlib==3.6.3",
        "networkx==2.5",
        "decorator==4.4.2",
        "pycocotools==2.0.7",
        "tqdm==4.70.1",
        "requests==2.25.1",
        "certifi==2026.10.19.post1",
        "chardet==4.0.0",
        "cloudpickle==3.1.3",
        "contourpy==1.3.2",
        "cycler==0.12.1",
        "fonttools==4.68.0",
        "idna==2.10",
        "joblib==1.6.0",
        "kiwisolver==1.5.1",
        "packaging==26.4",
        "Pillow==9.5.0",
        "pyparsing==3.3.3",
        "python-dateutil==4.0.0",
        "pytz==2026.6",
        "threadpoolctl==3.8.0",
        "tzdata==2026.6",
        "urllib3==1.26.20",
    ),  # fmt: skip
    modules=VENV_MODULES | _COMMON_MODULES | {"decorator", "chardet"},
)

BARE = Environment(
    name="none",
    summary="the standard library and pip only; the script's requirements.txt adds the rest",
    requirements=(),
    modules=VENV_MODULES,
)

DEFAULT_ENVIRONMENT = EVALAI_PY39.name
ENVIRONMENTS: dict[str, Environment] = {env.name: env for env in (EVALAI_PY39, EVALAI_PY37, BARE)}
# EvalAI's py3.7 and py3.8 workers share one package list.
ALIASES = {"evalai-py3.8": EVALAI_PY37.name}
# EvalAI's ``worker_python_version`` picks the worker image, and so the stack, when no environment is named.
_BY_WORKER_PYTHON = {"3.7": EVALAI_PY37.name, "3.8": EVALAI_PY37.name, "3.9": EVALAI_PY39.name}


def choices() -> list[str]:
    return [*ENVIRONMENTS, *ALIASES]


def canonical(name: str) -> str:
    """The environment's canonical name; ValueError (with the closest choice) for an unknown one."""
    value = str(name).strip()
    if value in ENVIRONMENTS:
        return value
    if value in ALIASES:
        return ALIASES[value]
    close = difflib.get_close_matches(value, choices(), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown evaluation environment {value!r}{hint} (choose one of {', '.join(choices())})")


def get(name: str | None) -> Environment:
    """The environment called ``name`` (None: the default)."""
    return ENVIRONMENTS[canonical(name) if name else DEFAULT_ENVIRONMENT]


def for_worker_python(version: object) -> str | None:
    """The stack of EvalAI's worker image for ``worker_python_version`` (3.7, '3.8', ...), if any."""
    if version is None:
        return None
    text = str(version).strip()
    if text in _BY_WORKER_PYTHON:
        return _BY_WORKER_PYTHON[text]
    major, _, minor = text.partition(".")
    newer = major == "3" and minor.isdigit() and int(minor) > 9
    return EVALAI_PY39.name if newer else None  # a newer image would have the current stack


# Import name → the distribution that provides it, where they differ or where a script commonly asks pip
# for it. Used to provide what a script will install at import time, and to suggest the requirements.txt
# line when validation finds an import the environment lacks.
IMPORT_TO_DISTRIBUTION: dict[str, str] = {
    "sklearn": "scikit-learn",
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "cv2": "opencv-python-headless",
    "skimage": "scikit-image",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "Levenshtein": "Levenshtein",
    "rapidfuzz": "rapidfuzz",
    "jellyfish": "jellyfish",
    "shapely": "shapely",
    "tabulate": "tabulate",
    "nltk": "nltk",
    "rouge_score": "rouge-score",
    "sacrebleu": "sacrebleu",
    "jiwer": "jiwer",
    "editdistance": "editdistance",
    "h5py": "h5py",
    "numba": "numba",
    "statsmodels": "statsmodels",
    "seaborn": "seaborn",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "Bio": "biopython",
    "lxml": "lxml",
    "ujson": "ujson",
    "orjson": "orjson",
    "jsonlines": "jsonlines",
    "pyarrow": "pyarrow",
    "sympy": "sympy",
    "imageio": "imageio",
    "tifffile": "tifffile",
    "nibabel": "nibabel",
    "SimpleITK": "SimpleITK",
    "motmetrics": "motmetrics",
    "lap": "lap",
    "fuzzywuzzy": "fuzzywuzzy",
    "termcolor": "termcolor",
    "tqdm": "tqdm",
    "requests": "requests",
    "scipy": "scipy",
    "numpy": "numpy",
    "pandas": "pandas",
    "matplotlib": "matplotlib",
    "networkx": "networkx",
    "pycocotools": "pycocotools",
}


def distribution_for(module: str) -> str | None:
    """The distribution a top-level import name comes from, when it is a known one."""
    return IMPORT_TO_DISTRIBUTION.get(module)


# Other distributions that provide a known import name (variants of one package).
_ALSO_PROVIDED_BY = {
    "opencv-python": "cv2", "opencv-contrib-python": "cv2", "opencv-contrib-python-headless": "cv2",
    "python-levenshtein": "Levenshtein", "pyyaml": "yaml", "pillow": "PIL", "pillow-simd": "PIL",
}  # fmt: skip


def modules_of(distribution: str) -> set[str]:
    """The import names a distribution is known to provide (its own name, normalised, when unknown)."""
    wanted = canonicalize_name(distribution)
    known = {m for m, d in IMPORT_TO_DISTRIBUTION.items() if canonicalize_name(d) == wanted}
    if wanted in _ALSO_PROVIDED_BY:
        known.add(_ALSO_PROVIDED_BY[wanted])
    return known or {wanted.replace("-", "_")}
