"""What an evaluation script imports and what it will ask pip for, read from its source without running it.

Why: EvalAI documents scripts that install packages at import time (``install("scipy")`` with
``subprocess.check_call([sys.executable, "-m", "pip", "install", p])``), but evaluation is sandboxed
without network. Finding those requests before the sandboxed import lets the worker provide the wheels
beforehand (and fail at setup, naming the package, when it cannot); finding the imports lets
``assay bundle validate`` warn about a package the chosen environment lacks, with file and line.

Static analysis sees literal arguments only: ``install("scipy")``, ``for p in ["a", "b"]: install(p)``,
``os.system("pip install tqdm")``, ``pip.main(["install", "x"])``. A computed argument marks the script
as calling pip with ``dynamic`` requests, which the worker answers by providing its known imports.
"""

from __future__ import annotations

import ast
import io
import re
import shlex
import sys
import threading
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from packaging.requirements import InvalidRequirement, Requirement

from . import environments
from .errors import Problem

STDLIB = frozenset(sys.stdlib_module_names) | {"__future__", "__main__"}
# CPython 3.11's ast.parse is not safe in two threads at once ("AST constructor recursion depth mismatch",
# seen with the worker's evaluation slots): one parse at a time.
_PARSING = threading.Lock()
# pip options whose value is the next token (so the value is no requirement).
_OPTIONS_WITH_VALUE = frozenset(
    {
        "-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url", "--extra-index-url",
        "-f", "--find-links", "-t", "--target", "--prefix", "--root", "--upgrade-strategy", "--python",
        "--platform", "--python-version", "--implementation", "--abi", "--src", "--cache-dir", "--log",
        "--proxy", "--retries", "--timeout", "--trusted-host", "--cert", "--client-cert", "--progress-bar",
        "--no-binary", "--only-binary", "--global-option", "--config-settings", "-C",
    }
)  # fmt: skip
_PIP_LINE = re.compile(r"(?:^|[\s;&|/!])(?:pip3?(?:\.\d+)?|-m\s+pip)\s+install\b(.*)", re.S)
_IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}
# numpy's aliases of builtins (np.float, ...), removed in numpy 1.24: old EvalAI scripts still use them.
REMOVED_NUMPY_ALIASES = {"float", "int", "bool", "object", "str", "long", "unicode", "complex"}


@dataclass(frozen=True)
class Located:
    """A name (module or requirement) and where in the script it appears."""

    name: str
    file: str
    line: int
    guarded: bool = False  # inside try/except ImportError: the script copes without it


@dataclass
class ScriptScan:
    imports: list[Located] = field(default_factory=list)  # absolute, not stdlib, not the script's own
    pip_requests: list[Located] = field(default_factory=list)  # literal requirements passed to pip install
    calls_pip: bool = False  # runs `pip install` somewhere, literal or computed
    dynamic: bool = False  # some `pip install` argument could not be read statically
    numpy_aliases: list[Located] = field(default_factory=list)  # np.float and friends, gone in numpy 1.24

    def import_names(self) -> set[str]:
        return {i.name for i in self.imports}


def scan_zip(data: bytes) -> ScriptScan:
    """Scan every .py file of a script zip (as the bundle or the worker holds it)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sources = [
            (info.filename, zf.read(info).decode("utf-8", errors="replace"))
            for info in zf.infolist()
            if info.filename.endswith(".py") and not info.is_dir() and info.file_size < 5 * 1024**2
        ]
        names = [info.filename for info in zf.infolist()]
    return scan_sources(sources, names)


def scan_sources(sources: Iterable[tuple[str, str]], names: Iterable[str] = ()) -> ScriptScan:
    """Scan ``(path, text)`` pairs; ``names`` (every file of the script) tells its own modules apart."""
    sources = list(sources)
    own = _own_modules([*names, *(path for path, _ in sources)])
    scan = ScriptScan()
    for path, text in sources:
        try:
            with _PARSING:
                tree = ast.parse(text, filename=path)
        except (SyntaxError, ValueError):
            continue  # the import will report it, with the real traceback
        _Visitor(path, own, scan).run(tree)
    return scan


def _own_modules(names: Iterable[str]) -> set[str]:
    """Top-level names the script's own files make importable (``main.py`` → main, ``utils/`` → utils)."""
    own = set()
    for name in names:
        first, sep, _ = name.strip("/").partition("/")
        own.add(first if sep else first.removesuffix(".py"))
    return own


class _Visitor(ast.NodeVisitor):
    def __init__(self, path: str, own: set[str], scan: ScriptScan) -> None:
        self.path = path
        self.own = own
        self.scan = scan
        self.guard = 0
        self.installers: set[str] = set()  # functions that run `pip install <their argument>`
        self.loops: dict[str, list[str]] = {}  # loop variable → the literal strings it takes
        self.inside_installer = 0
        self.local_installers: set[str] = set()  # functions that pip-install a folder of the script
        self.numpy_names: set[str] = set()  # what `import numpy [as np]` bound in this file

    def run(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                kind = self._installs_argument(node)
                if kind == "package":
                    self.installers.add(node.name)
                elif kind == "local":
                    self.local_installers.add(node.name)
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                values = _literal_strings(node.iter)
                if values:
                    self.loops[node.target.id] = values
        self.visit(tree)

    # --- imports -------------------------------------------------------------------------------

    def visit_Try(self, node: ast.Try) -> None:
        guarded = any(_catches_import_error(h) for h in node.handlers)
        self.guard += guarded
        for stmt in node.body:
            self.visit(stmt)
        self.guard -= guarded
        for part in (*node.handlers, *node.orelse, *node.finalbody):
            self.visit(part)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._import(alias.name, node.lineno)
            if alias.name == "numpy":
                self.numpy_names.add(alias.asname or "numpy")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        value = node.value
        if isinstance(value, ast.Name) and value.id in self.numpy_names and node.attr in REMOVED_NUMPY_ALIASES:
            self.scan.numpy_aliases.append(Located(f"{value.id}.{node.attr}", self.path, node.lineno))
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self._import(node.module, node.lineno)

    def _import(self, dotted: str, line: int) -> None:
        top = dotted.split(".", 1)[0]
        if top in STDLIB or top in self.own:
            return
        self.scan.imports.append(Located(top, self.path, line, guarded=self.guard > 0))

    # --- pip -----------------------------------------------------------------------------------

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        # Its own `pip install <parameter>` is read at each call instead (install("scipy")).
        inside = node.name in self.installers or node.name in self.local_installers
        self.inside_installer += inside
        self.generic_visit(node)
        self.inside_installer -= inside

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node.func)
        if name in self.installers:
            for arg in node.args[:1]:
                self._request_argument(arg, node.lineno)
        elif name in self.local_installers:
            self.scan.calls_pip = True  # a folder shipped with the script: nothing to provide
        else:
            found = _pip_install_args(node, self.loops) if not self.inside_installer else None
            if found is not None:
                self.scan.calls_pip = True
                literal, dynamic = found
                self.scan.dynamic |= dynamic
                for text in literal:
                    self._add_request(text, node.lineno)
        self.generic_visit(node)

    def _request_argument(self, arg: ast.expr, line: int) -> None:
        self.scan.calls_pip = True
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            for token in _split_args(arg.value):
                self._add_request(token, line)
        elif isinstance(arg, ast.Name) and arg.id in self.loops:
            for value in self.loops[arg.id]:
                self._add_request(value, line)
        else:
            self.scan.dynamic = True

    def _add_request(self, text: str, line: int) -> None:
        if text and not text.startswith("-"):
            self.scan.pip_requests.append(Located(text, self.path, line))

    def _installs_argument(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
        """ "package" when ``func`` runs `pip install` on one of its parameters (EvalAI's ``install(package)``).

        "local" when it builds a path (``__file__``, ``os.path``, ``Path``): it installs a folder of the
        script (EvalAI's ``install_local_package``), not a package to provide. None otherwise.
        """
        params = {a.arg for a in (*func.args.posonlyargs, *func.args.args)}
        local = False
        runs_pip = False
        for node in ast.walk(func):
            if isinstance(node, ast.Name) and node.id in ("__file__", "Path"):
                local = True
            if isinstance(node, ast.Attribute) and node.attr in ("path", "dirname", "abspath", "join"):
                local = True
            if isinstance(node, ast.Call) and _pip_install_args(node, {}) is not None:
                runs_pip = runs_pip or any(isinstance(n, ast.Name) and n.id in params for n in ast.walk(node))
        if not runs_pip:
            return None
        return "local" if local else "package"


def _call_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    if handler.type is None:
        return True
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(_call_name(t) in _IMPORT_ERRORS for t in types)


def _literal_strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.List | ast.Tuple | ast.Set) and node.elts:
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if len(values) == len(node.elts):
            return values
    return []


def _pip_install_args(call: ast.Call, loops: dict[str, list[str]]) -> tuple[list[str], bool] | None:
    """(literal requirements, whether some were computed) when ``call`` runs `pip install`, else None.

    ``loops``: loop variables over literal lists, so ``for p in ["a", "b"]: run([..., "install", p])`` reads.
    """
    func = _call_name(call.func)
    for arg in call.args:
        if isinstance(arg, ast.List | ast.Tuple):
            tokens: list[str | None] = []
            for e in arg.elts:
                if isinstance(e, ast.Constant) and isinstance(e.value, str):
                    tokens.append(e.value)
                elif isinstance(e, ast.Name) and e.id in loops:
                    tokens.extend(loops[e.id])
                else:
                    tokens.append(None)
            via_main = func == "main" and tokens[:1] == ["install"]  # pip.main(["install", ...])
            start = _after_install(tokens) if not via_main else 1
            if start is not None:
                return _requirements(tokens[start:])
        elif isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            match = _PIP_LINE.search(arg.value)
            if match:
                return _requirements(_split_args(match.group(1).split("&&")[0].split(";")[0]))
        elif isinstance(arg, ast.JoinedStr | ast.BinOp):
            text = "".join(n.value for n in ast.walk(arg) if isinstance(n, ast.Constant) and isinstance(n.value, str))
            if _PIP_LINE.search(text + " "):
                literal, _ = _requirements(_split_args(_PIP_LINE.search(text + " ").group(1)))
                return literal, True
    return None


def _after_install(tokens: list[str | None]) -> int | None:
    """Index after ``install`` in an argv that runs pip (``pip``, ``pip3``, ``-m pip``, ``.../pip``)."""
    for i, token in enumerate(tokens):
        if token != "install" or i == 0:
            continue
        before = [t for t in tokens[:i] if t is not None]
        if before and re.fullmatch(r"(?:.*/)?pip3?(?:\.\d+)?", before[-1]):
            return i + 1
    return None


def _requirements(tokens: list[str | None]) -> tuple[list[str], bool]:
    literal: list[str] = []
    dynamic = False
    skip = False
    for token in tokens:
        if skip:
            skip = False
            continue
        if token is None:
            dynamic = True
        elif token.startswith("-"):
            skip = token in _OPTIONS_WITH_VALUE
        else:
            literal.append(token)
    return literal, dynamic


def _split_args(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def import_warnings(script_zip: bytes, rel: str, environment: str) -> list[Problem]:
    """A warning for each package the script imports that ``environment`` will not provide, at its first import.

    Provided means: in the environment, named by requirements.txt, or asked of pip by the script. Imports
    inside ``try/except ImportError`` are left alone (the script copes without them).
    """
    try:
        env = environments.get(environment)
        scan = scan_zip(script_zip)
        with zipfile.ZipFile(io.BytesIO(script_zip)) as zf:
            names = set(zf.namelist())
            requirements = zf.read("requirements.txt").decode("utf-8", "replace") if "requirements.txt" in names else ""
    except (ValueError, zipfile.BadZipFile, OSError, KeyError):
        return []  # an unknown environment or a broken zip is reported elsewhere
    provided = set(env.modules)
    for line in [*requirements.splitlines(), *(r.name for r in scan.pip_requests)]:
        text = line.split("#", 1)[0].strip()
        if text and not text.startswith("-"):
            try:
                provided |= environments.modules_of(Requirement(text).name)
            except InvalidRequirement:
                continue
    problems: list[Problem] = _numpy_alias_warnings(scan, env, rel)
    seen: set[str] = set()
    for found in scan.imports:
        module = found.name
        if found.guarded or module in provided or module in seen:
            continue
        dist = environments.distribution_for(module)
        if scan.dynamic and dist:
            continue  # the worker provides known imports of a script that installs packages itself
        seen.add(module)
        hint = f"add {dist!r} to requirements.txt" if dist else "add its package to requirements.txt"
        problems.append(
            Problem(
                "import_not_provided",
                f"imports {module!r}, which the {env.name} evaluation environment does not provide; {hint} "
                "(or choose another evaluation_environment)",
                file=f"{rel.rstrip('/')}/{found.file}",
                line=found.line,
                key="evaluation_script",
                severity="warning",
            )
        )
    return problems


def _numpy_alias_warnings(scan: ScriptScan, env: environments.Environment, rel: str) -> list[Problem]:
    """np.float and friends fail with AttributeError on numpy >= 1.24; say so once per alias, with the fix."""
    version = env.pins().get("numpy")
    if not version or tuple(int(p) for p in version.split(".")[:2]) < (1, 24):
        return []
    problems: list[Problem] = []
    seen: set[str] = set()
    for found in scan.numpy_aliases:
        attr = found.name.rsplit(".", 1)[1]
        if attr in seen:
            continue
        seen.add(attr)
        problems.append(
            Problem(
                "numpy_alias_removed",
                f"uses {found.name}, which numpy {version} in the {env.name} evaluation environment no longer has "
                "(removed in numpy 1.24); choose `evaluation_environment: evalai-py3.7`, where it still works, "
                f"or write the builtin {attr} instead",
                file=f"{rel.rstrip('/')}/{found.file}",
                line=found.line,
                key="evaluation_script",
                severity="warning",
            )
        )
    return problems
