"""The command line is the top layer: every parser lives in ``avmnist_torch/cli/``, and nothing imports it."""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
from pathlib import Path

import avmnist_torch.cli as cli

PACKAGE = Path(cli.__file__).resolve().parents[1]
CLI = PACKAGE / "cli"


def imported_modules(path: Path):
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = parts[:-1]  # the package holding the module (for __init__.py: the package itself)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def library_files():
    return [p for p in PACKAGE.rglob("*.py") if CLI not in p.parents]


def test_no_library_module_parses_arguments_or_imports_the_cli():
    offenders = []
    for path in library_files():
        for name in imported_modules(path):
            if name == "argparse" or name == "avmnist_torch.cli" or name.startswith("avmnist_torch.cli."):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not offenders, "\n".join(offenders)


def test_every_command_module_registers_itself_and_takes_traceback():
    modules = [m.name for m in pkgutil.iter_modules([str(CLI)]) if not m.name.startswith("_")]
    parser = cli.build_parser()
    [subparsers] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    registered = {command.__name__.rsplit(".", 1)[1] for command in cli.COMMANDS}
    for name in modules:
        module = importlib.import_module(f"avmnist_torch.cli.{name}")
        assert callable(getattr(module, "add_parser", None)), f"cli/{name}.py has no add_parser(subparsers)"
    assert registered == set(modules), f"command modules not in cli.COMMANDS: {set(modules) - registered}"
    for name, sub in subparsers.choices.items():
        assert any("--traceback" in a.option_strings for a in sub._actions), f"{name} lacks --traceback"


def test_every_option_of_every_command_says_what_it_is_for():
    def undocumented(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from undocumented(sub, f"{name} {sub_name}")
            elif not action.help and not isinstance(action, argparse._HelpAction):
                yield f"{name} {'/'.join(action.option_strings) or action.dest}"

    assert list(undocumented(cli.build_parser(), "avmnist")) == []
