"""The package's shape: imports run one way, and every third-party module it imports is declared.

Data flows sources -> waveform (dsp, schemes) -> rendering -> storage -> items (generator) -> dataset ->
tools (export, verify, inspection) -> cli. A module may import from its own layer or a
lower one, never a higher one, and never the package root (``avmnist_torch/__init__.py``
only re-exports). Imports of the package's own modules inside functions are refused too:
they are how a cycle gets hidden. A new module must be given a layer here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "avmnist_torch"

#: Bottom first. The key is a module's first name under the package (a subpackage counts as one).
LAYERS = [
    ("foundation", {"common", "files", "cache_folder", "jit"}),
    ("sources", {"sources"}),
    ("waveform", {"dsp", "noise", "schemes", "image_pca"}),
    ("rendering", {"rendering"}),
    ("storage", {"storage"}),
    ("items", {"item_options", "exported", "generator", "image_half"}),
    ("dataset", {"dataset", "paired", "transforms", "sampling"}),
    ("tools", {"workers", "export", "verify", "inspection", "demo", "lightning"}),
    ("cli", {"cli"}),
]
LAYER_OF = {name: i for i, (_, names) in enumerate(LAYERS) for name in names}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        yield path, parts


def _top(parts) -> str:
    return parts[0]


def _resolve(parts, node: ast.ImportFrom):
    """The package-relative dotted target of a ``from`` import (None for third-party ones)."""
    if node.level == 0:
        if not node.module or not (node.module == "avmnist_torch" or node.module.startswith("avmnist_torch.")):
            return None
        target = node.module.split(".")[1:]
    else:
        here = list(parts[:-1])  # the package the module is in (for __init__, the package itself)
        # level 1 is the module's own package; each further level climbs one
        base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
        if node.level - 1 > len(here):
            raise AssertionError(f"relative import climbs above the package: {parts}")
        target = base + (node.module.split(".") if node.module else [])
    return target


def _internal_imports(path: Path, parts):
    """``(target parts, names, lineno, inside_function)`` for each import of the package itself."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                target = _resolve(parts, child)
                if target is not None:
                    out.append((target, [a.name for a in child.names], child.lineno, in_function))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name == "avmnist_torch" or alias.name.startswith("avmnist_torch."):
                        out.append((alias.name.split(".")[1:], [], child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return out


def _target_top(target, names):
    """The first name under the package that an import reaches (``from . import dsp`` reaches dsp)."""
    if target:
        return target[0]
    # ``from . import x`` at the package root: x is a module, or a name of __init__
    if names and ((PACKAGE / names[0]).is_dir() or (PACKAGE / f"{names[0]}.py").is_file()):
        return names[0]
    return None


def test_every_module_has_a_layer():
    unknown = sorted({_top(parts) for _, parts in _modules() if parts != ("__init__",) and _top(parts) not in LAYER_OF})
    assert not unknown, f"modules without a layer in tests/test_layout.py: {unknown}"


def test_imports_run_one_way():
    problems = []
    for path, parts in _modules():
        if parts == ("__init__",):
            continue  # the root only re-exports the public API
        here = _top(parts)
        for target, names, line, in_function in _internal_imports(path, parts):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}"
            top = _target_top(target, names)
            if top is None:
                problems.append(f"{where} imports the package root ({names}); import from the module that defines it")
                continue
            if top not in LAYER_OF:
                problems.append(f"{where} imports {top}, which has no layer")
                continue
            if LAYER_OF[top] > LAYER_OF.get(here, -1):
                problems.append(f"{where}: {here} ({LAYERS[LAYER_OF[here]][0]}) imports {top} "
                                f"({LAYERS[LAYER_OF[top]][0]}), a higher layer")
            if in_function:
                problems.append(f"{where}: import of avmnist_torch.{'.'.join(target) or names} inside a function")
    assert not problems, "\n".join(problems)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule is not vacuous: a synthetic upward import is reported."""
    fake = tmp_path / "schemes.py"
    fake.write_text("from .dataset import AVMNISTAudioDataset\n\ndef f():\n    from .common import SPLITS\n")
    found = _internal_imports(fake, ("schemes",))
    assert (["dataset"], ["AVMNISTAudioDataset"], 1, False) in found
    assert (["common"], ["SPLITS"], 4, True) in found
    assert LAYER_OF["dataset"] > LAYER_OF["schemes"]


# ----------------------------------------------------------------------------
# declared dependencies


#: Third-party modules the package imports only in the named files, guarded, from an optional
#: extra: module -> (extra, files relative to the package).
OPTIONAL_IMPORTS = {"lightning": ("lightning", {"lightning.py"})}


def _third_party_imports(every: bool = False):
    """Third-party top-level module -> the first file importing it (``every``: the set of all such files)."""
    found = {}
    stdlib = set(sys.stdlib_module_names)
    for path, _ in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "avmnist_torch" and top not in stdlib:
                    where = str(path.relative_to(PACKAGE.parent))
                    if every:
                        found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
                    else:
                        found.setdefault(top, where)
    return found


def _requirement_name(req: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_every_imported_package_is_declared():
    try:
        requires = metadata.requires("avmnist-torch") or []
    except metadata.PackageNotFoundError:
        pytest.skip("avmnist-torch is not installed (pip install -e .), so its metadata cannot be read")
    runtime = {_requirement_name(r) for r in requires if "extra ==" not in r}
    dists = metadata.packages_distributions()
    missing = []
    for module, where in sorted(_third_party_imports().items()):
        if module in OPTIONAL_IMPORTS:
            continue  # test_optional_imports_stay_in_their_modules
        owners = {d.lower().replace("_", "-") for d in dists.get(module, [])}
        if not owners:
            missing.append(f"{module} (imported in {where}) is not installed, so its distribution is unknown")
        elif not owners & runtime:
            missing.append(f"{module} (imported in {where}) comes from {sorted(owners)}, not declared in dependencies")
    assert not missing, "\n".join(missing)


def _extras() -> dict:
    """pyproject.toml's optional dependencies: extra -> lower-cased requirement names."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata (current after pip install -e .)
        try:
            requires = metadata.requires("avmnist-torch") or []
        except metadata.PackageNotFoundError:
            pytest.skip("Python 3.10 without tomllib, and avmnist-torch is not installed")
        extras: dict = {}
        for req in requires:
            found = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
            if found:
                extras.setdefault(found.group(1), set()).add(_requirement_name(req))
        return extras
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    return {extra: {_requirement_name(r) for r in reqs}
            for extra, reqs in project.get("optional-dependencies", {}).items()}


def test_optional_imports_stay_in_their_modules():
    """Lightning is imported only by avmnist_torch/lightning.py and declared as the 'lightning' extra (and in 'test')."""
    imported = _third_party_imports(every=True)
    extras = _extras()
    problems = []
    for module, (extra, allowed) in OPTIONAL_IMPORTS.items():
        stray = sorted(imported.get(module, set()) - allowed)
        if stray:
            problems.append(f"{module} is imported outside {sorted(allowed)}: {stray}")
        if module not in extras.get(extra, set()):
            problems.append(f"{module} is not declared in the optional extra {extra!r} of pyproject.toml")
        if module not in extras.get("test", set()):
            problems.append(f"{module} is not in the 'test' extra, so CI would skip the tests that need it")
    assert not problems, "\n".join(problems)


@pytest.mark.slow  # a fresh interpreter
def test_package_imports_without_lightning():
    """Every module but avmnist_torch.lightning imports with Lightning hidden; the DataModule names the extra."""
    script = textwrap.dedent("""
        import importlib, pkgutil, sys

        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("lightning", "pytorch_lightning"):
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None

        sys.meta_path.insert(0, Hide())
        import avmnist_torch
        for info in pkgutil.walk_packages(avmnist_torch.__path__, "avmnist_torch."):
            if info.name != "avmnist_torch.lightning" and not info.name.endswith("__main__"):
                importlib.import_module(info.name)
        from avmnist_torch import *  # noqa: F403  (the DataModule is not in __all__)
        for attempt in ("from avmnist_torch import AVMNISTDataModule",
                        "from avmnist_torch.lightning import AVMNISTDataModule"):
            try:
                exec(attempt)
            except ImportError as err:
                print("ERROR:", err)
            else:
                print("IMPORTED")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PACKAGE.parent, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2, done.stdout
    for line in lines:
        assert line.startswith("ERROR:") and "pip install 'avmnist-torch[lightning]'" in line, line


def test_test_references_are_not_imported_by_the_package():
    """librosa and scikit-learn are what the package is checked against, so it must not use them."""
    imported = _third_party_imports()
    assert "librosa" not in imported and "sklearn" not in imported, imported
