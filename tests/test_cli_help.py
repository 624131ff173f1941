"""Every command line a newcomer meets: `--help` and `--version` run, name the command, and point
at nothing a user does not have (no repo-internal paths)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import distgan

REPO = Path(__file__).resolve().parents[1]
MODULES = ["train", "sample", "evaluate", "score", "interpolate", "fetch_inception", "launch"]
INTERNAL_PATHS = ["shared/", "/work/", "../"]


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", f"distgan.{module}", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.slow
@pytest.mark.parametrize("module", MODULES)
def test_help_runs_names_the_command_and_no_internal_path(module: str):
    result = run_module(module, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: distgan.{module} ")
    assert "--version" in result.stdout
    for path in INTERNAL_PATHS:
        assert path not in result.stdout, f"distgan.{module} --help mentions {path}"


def test_no_message_in_the_package_names_an_internal_path():
    # Error messages and help texts are string literals (f-strings' parts included); docstrings
    # and comments are for developers and may name the repo's own layout.
    found = []
    for file in sorted((REPO / "distgan").rglob("*.py")):
        tree = ast.parse(file.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                found += [f"{file.relative_to(REPO)}:{node.lineno}: {p}" for p in INTERNAL_PATHS if p in node.value]
    assert not found, found


@pytest.mark.parametrize("module", ["train", "fetch_inception"])
def test_version_prints_the_package_version(module: str):
    result = run_module(module, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"distgan {distgan.__version__}"


def console_scripts() -> dict[str, str]:
    """pyproject's [project.scripts] (tomllib is 3.11+; distgan supports 3.10)."""
    section = (REPO / "pyproject.toml").read_text().split("[project.scripts]")[1].split("\n[")[0]
    return dict(re.findall(r'^([\w-]+) = "([\w.:]+)"', section, re.MULTILINE))


def test_every_console_script_is_a_module_tested_here():
    scripts = console_scripts()
    assert set(scripts.values()) == {f"distgan.{module}:main" for module in MODULES}
    for name, target in scripts.items():
        assert name == "distgan-" + target.removeprefix("distgan.").removesuffix(":main").replace("_", "-")
