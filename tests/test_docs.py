"""The examples in docs/ run as written: every ```python block, and the ``infoatlas`` and
``python -c`` lines of every ```bash block (other shell lines, e.g. long benchmark runs,
are only shown)."""
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = sorted((Path(__file__).resolve().parent.parent / "docs").glob("*.md"))


def blocks(path: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", path.read_text(), re.S)


def test_docs_exist_and_have_examples():
    assert DOCS, "docs/ has no pages"
    assert all(blocks(p, "python") or blocks(p, "bash") for p in DOCS)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_python_blocks_run(page, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="the docs' plots need the bench extra")
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)  # examples may write files
    for i, code in enumerate(blocks(page, "python")):
        exec(compile(code, f"{page.name}[{i}]", "exec"), {"__name__": "__docs__"})


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_shell_lines_run(page, tmp_path):
    pytest.importorskip("matplotlib", reason="the docs' plots need the bench extra")
    for block in blocks(page, "bash"):
        for line in block.splitlines():
            args = shlex.split(line)
            if not args or args[0] not in ("infoatlas", "python") or (args[0] == "python" and args[1] != "-c"):
                continue
            cmd = [sys.executable, "-m", "infoatlas_loss.cli", *args[1:]] if args[0] == "infoatlas" \
                else [sys.executable, *args[1:]]
            p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, f"{line}\n{p.stderr}"
