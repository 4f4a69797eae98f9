"""The repository speaks to users: no development history in its Markdown and Python.

History (which round of work did what, commit ids, tracker numbers) lives in ``git log``.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".git", ".venv", "outputs", "runs", "build", "demos", "__pycache__", ".pytest_cache"}
PATTERNS = {
    "numbered round of work": re.compile(r"\b(session|round|sprint)s? \d+\b", re.IGNORECASE),
    "issue number": re.compile(r"\b(issue|ticket|PR)s? ?#?\d+\b", re.IGNORECASE),
    "tracker wording": re.compile(r"\bthe issue'?s\b|\bthis issue\b", re.IGNORECASE),
    # 7-40 hex digits with a letter and a digit, not part of a longer hex run (sha256 digests
    # of shipped weights are 64 digits and allowed), nor a demo-set fingerprint named as one
    "commit hash": re.compile(r"(?<!demo set )(?<!demo-set )(?<![0-9a-fA-F])"
                              r"(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}(?![0-9a-fA-F])"),
    "path outside the repository": re.compile(r"\.\./shared/"),
}
# words that look like hashes but are not (hex-only English words and identifiers)
ALLOWED_HEX = {"deadbeef", "decade", "facade", "defaced", "0x5eed"}


def _files():
    for path in sorted(ROOT.rglob("*")):
        if path.suffix not in (".md", ".py") or not path.is_file():
            continue
        if SKIP_DIRS & set(path.relative_to(ROOT).parts):
            continue
        yield path


def _hits(text: str) -> list[str]:
    out = []
    for line_no, line in enumerate(text.splitlines(), 1):
        for what, pat in PATTERNS.items():
            for m in pat.finditer(line):
                if m.group(0).lower() in ALLOWED_HEX:
                    continue
                out.append(f"{line_no}: {what}: {m.group(0)!r}")
    return out


def test_patterns_catch_history():
    # the samples are assembled at run time so that this file itself carries no history
    assert _hits("as measured in " + "session" + " 12")
    assert _hits("fixed in " + "issue" + " #27")
    assert _hits("with the code of commit " + "52c" + "3679")
    assert _hits("see .." + "/shared/paper/infoatlas-paper.txt")
    assert not _hits("sha256 `efed1a125698ace8f2fd06ef3c772bc5e8f271abf21ce191856eb21f681e8b6b`")
    assert not _hits("seeds 0 1 2, n = 5000, 128 slices")
    assert not _hits("## PickCube, demo set 7444bd1799")


@pytest.mark.parametrize("path", list(_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_development_history(path):
    hits = _hits(path.read_text(encoding="utf-8", errors="replace"))
    assert not hits, f"{path.relative_to(ROOT)} carries development history:\n" + "\n".join(hits[:20])
