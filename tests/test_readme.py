"""The README's quickstart block runs as written (two steps instead of 100 to stay fast)."""
import re
from pathlib import Path

import torch


def test_readme_quickstart_runs():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"## Quickstart.*?```python\n(.*?)```", text, re.S).group(1)
    assert "range(100)" in code
    ns = {}
    exec(compile(code.replace("range(100)", "range(2)"), "README.md", "exec"), ns)
    assert torch.isfinite(ns["loss"]) and ns["loss"].requires_grad
    assert all(p.grad is not None for p in ns["encoder"].parameters())
