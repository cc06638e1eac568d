"""The documentation cannot rot: its code runs and its site builds.

Every fenced block in `docs/**/*.md` whose info string is exactly `python` is executed:
each page's blocks in order, sharing one namespace, in a fresh interpreter (so a kernel or
rule that a page registers never reaches the registries of other tests). Blocks that must
not run use another info string (`python {.no-run}`, `pycon`, `bash`, ...).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGE_TIMEOUT_S = 600
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")

# Runs in the child interpreter: reads (page, [(first line, source), ...]) from stdin and
# executes the blocks in order. Each block is compiled under the page's name with its own
# line numbers, so a traceback points at the line of the Markdown file.
RUNNER = """
import json, sys
page, blocks = json.load(sys.stdin)
namespace = {"__name__": "__docs__"}
for line, source in blocks:
    exec(compile("\\n" * (line - 1) + source, page, "exec"), namespace)
"""


def python_blocks(text: str) -> list[tuple[int, str]]:
    """`(line of the block's first code line, source)` of every ```python block in `text`."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            close = FENCE.match(lines[j])
            if (
                close is not None
                and close["fence"][0] == fence[0]
                and len(close["fence"]) >= len(fence)
                and not close["info"].strip()
            ):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        if info == "python":
            blocks.append((i + 2, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def pages_with_code() -> list[Path]:
    return [p for p in sorted(DOCS.rglob("*.md")) if python_blocks(p.read_text("utf-8"))]


def test_fence_parser():
    text = "\n".join(
        [
            "# Title",
            "```python",
            "x = 1",
            "```",
            "```python {.no-run}",
            "raise RuntimeError",
            "```",
            "````markdown",
            "```python",
            "raise RuntimeError",
            "```",
            "````",
            "- item",
            "",
            "    ```python",
            "    y = x + 1",
            "    ```",
        ]
    )
    assert python_blocks(text) == [(3, "x = 1\n"), (16, "y = x + 1\n")]


def test_guides_have_code():
    """The pages whose examples are promised to run still have them."""
    names = {p.relative_to(DOCS).as_posix() for p in pages_with_code()}
    assert {"index.md", "concepts.md", "extending.md"} <= names, names


@pytest.mark.parametrize("page", pages_with_code(), ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_code_runs(page: Path, tmp_path: Path):
    name = page.relative_to(ROOT).as_posix()
    blocks = python_blocks(page.read_text("utf-8"))
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER],
        input=json.dumps([name, blocks]),
        capture_output=True,
        text=True,
        cwd=tmp_path,  # anything a page writes lands in a temporary directory
        env=env,
        timeout=PAGE_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"code in {name} failed:\n{proc.stdout}\n{proc.stderr}"


def test_site_builds_strict(tmp_path: Path):
    """`mkdocs build --strict`: no warning (broken links, missing API objects, ...)."""
    for module in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        if importlib.util.find_spec(module.split(".")[0]) is None or (
            importlib.util.find_spec(module) is None
        ):
            pytest.skip(f"{module} is not installed (pip install -e '.[docs]')")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PAGE_TIMEOUT_S,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
    )
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
