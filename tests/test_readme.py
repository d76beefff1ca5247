"""The README's Python examples must at least compile, and name only real API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tasker
import tasker.testing

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples_compile() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5
    for block in blocks:
        compile(block, "README.md", "exec")


def test_readme_imports_exist() -> None:
    for block in python_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module == "tasker":
                for alias in node.names:
                    assert hasattr(tasker, alias.name), alias.name
            if isinstance(node, ast.ImportFrom) and node.module == "tasker.testing":
                for alias in node.names:
                    assert hasattr(tasker.testing, alias.name), alias.name
