"""Pool the saved ``bc_guidance`` runs of one task over BC seeds, paired against plain BC.

    python integrations/maniskill/experiments/bc_summary.py --task StackCube
    python integrations/maniskill/experiments/bc_summary.py --task PickCube --seeds 2 3 4 5 6 7 8 9
    python integrations/maniskill/experiments/bc_summary.py --task PickCube --demos 100
    python integrations/maniskill/experiments/bc_summary.py --task StackCube --demos 100 --versus "infoatlas --contrast-gap 12 --vote agree --guard 4"
    python integrations/maniskill/experiments/bc_summary.py --all    # rewrites summary.md: every task and demo count

Reads ``integrations/maniskill/experiments/results/bc_guidance/<task>.md`` (each section: the command that ran, then
its Markdown table), keeps the sections run with the given BC settings (default: the
example's, end-effector deltas with 8-action chunks and subgoals from column 18), number
of demos (``--demos``; a command without it ran bc_guidance's default, 300) and demo set
(the fingerprint bc_guidance prints; one table per set), names each row's key-state source by its method plus the guided-BC flags of
its command and, for discovered key states, the discovery flags that differ from
``KeyStateConfig``'s defaults and the key-state error (e.g. ``infoatlas --vote median (5.2 steps)``), and prints per source: the BC
seeds it has, the mean success seen / unseen over the seeds it shares with plain BC, and,
seed by seed, how often it beats, ties or trails plain and random key states and any source
named by ``--versus`` (per split; a
sign test's two-sided p over the non-tied seeds).  Nothing is re-run: the numbers are the
saved tables'.
"""
from __future__ import annotations

import argparse
import math
import re
from collections import defaultdict
from pathlib import Path

from infoatlas_loss.integrations.maniskill import KeyStateConfig

SETTINGS = ("--goal-from 18", "--control-mode pd_ee_delta_pose", "--chunk 8")
EPOCHS = "60"  # the example's BC epochs
# the flags that change which key states a discovery returns
DISCOVERY_FLAGS = ("--contrast-gap", "--discovery-seed", "--steps", "--mine-steps", "--restarts", "--vote", "--guard")
FLAG_DEFAULTS = {"--discovery-seed": 0, "--mine-steps": 750, "--contrast-gap": KeyStateConfig.contrast_gap,
                 "--steps": KeyStateConfig.steps, "--restarts": KeyStateConfig.restarts,
                 "--vote": KeyStateConfig.vote, "--guard": KeyStateConfig.guard}  # bc_guidance's defaults
DEFAULT_DEMOS = 300  # bc_guidance's --demos default
DISCOVERED = ("infoatlas", "mine")  # methods whose key states a discovery run produced
MINE_FLAGS = ("--mine-steps",)  # discovery flags that change MINE's key states only


def _is_default(flag: str, value: str) -> bool:
    default = FLAG_DEFAULTS.get(flag)
    if isinstance(default, str) or default is None:
        return value == default
    try:
        return float(value) == float(default)
    except ValueError:
        return False


def sections(text: str):
    """Markdown -> [(command, demo set, [row cells])]: every ``## `command` `` heading, the
    demo-set fingerprint its output names (None before bc_guidance printed one) and the
    table rows under it."""
    out = []
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        cmd = re.match(r"`([^`]*)`", block)
        demo_set = re.search(r" demos \(demo set ([0-9a-f]+)\)", block)
        rows = [[c.strip() for c in line.strip().strip("|").split("|")]
                for line in block.splitlines() if line.startswith("| ") and not line.startswith("| method")]
        out.append((cmd.group(1) if cmd else "", demo_set.group(1) if demo_set else None, rows))
    return out


def demo_sets(text: str, demos: int = DEFAULT_DEMOS) -> list[str | None]:
    """The demo sets of the sections run with ``demos`` demos, in order of appearance."""
    return list(dict.fromkeys(s for cmd, s, _ in sections(text) if demo_count(cmd) == demos))


def source_name(method: str, cmd: str, error: str) -> str:
    """Method plus, for discovered key states, the command's non-default discovery flags
    and the key-state error (steps)."""
    if method == "plain":
        return method
    discovered = any(d in method for d in DISCOVERED)
    parts = [method]
    for flag in DISCOVERY_FLAGS if discovered else ():
        if flag in MINE_FLAGS and "mine" not in method:
            continue
        m = re.search(rf"{flag} (\S+)", cmd)
        if m and not _is_default(flag, m.group(1)):  # a default value names nothing new
            parts.append(f"{flag} {m.group(1)}")
    return " ".join(parts + ([f"({error} steps)"] if discovered else []))


def sign_test(wins: int, losses: int) -> float:
    """Two-sided binomial sign-test p-value over the non-tied pairs."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n)


def demo_count(cmd: str) -> int:
    """The ``--demos`` of a bc_guidance command (its default if absent)."""
    m = re.search(r"--demos (\d+)", cmd)
    return int(m.group(1)) if m else DEFAULT_DEMOS


def collect(text: str, settings=SETTINGS, epochs: str = EPOCHS, demos: int = DEFAULT_DEMOS,
            demo_set: str | None = None):
    """{source: {bc seed: (seen, unseen)}} from the sections with these settings, demo
    count and demo set (None: the runs from before demo sets were fingerprinted); a seed run
    twice must give the same rates (the runs are deterministic), else ValueError."""
    runs = defaultdict(dict)
    for cmd, found_set, rows in sections(text):
        if not all(f" {s} " in f" {cmd} " for s in settings):  # whole flags: --chunk 8 is not --chunk 80
            continue
        # fewer demos is another experiment, never pooled with 300; so are regenerated demos,
        # on which BC seed k trains a different policy
        if demo_count(cmd) != demos or found_set != demo_set:
            continue
        for cells in rows:
            if len(cells) != 8 or cells[2] != epochs:
                continue
            name, seed = source_name(cells[0], cmd, cells[4]), int(cells[3])
            rates = (float(cells[5]), float(cells[6]))
            if runs[name].get(seed, rates) != rates:
                raise ValueError(f"{name} BC seed {seed} was saved twice with different rates: "
                                 f"{runs[name][seed]} vs {rates}")
            runs[name][seed] = rates
    return runs


def match_source(runs: dict, pattern: str) -> str | None:
    """The source named ``pattern`` (with or without its key-state error), else the one
    whose name contains it (None if none does)."""
    exact = [name for name in runs if name == pattern or name.startswith(pattern + " (")]
    hits = exact or [name for name in runs if pattern in name]
    if len(hits) > 1:
        raise SystemExit(f"--versus {pattern!r} matches {len(hits)} sources: {hits}")
    return hits[0] if hits else None


def table(runs: dict, only_seeds=None, versus=()) -> list[str]:
    """Markdown rows: per source, the means over the BC seeds it shares with plain BC and
    the paired comparisons with plain and random key states and with each source named by
    ``versus`` (see ``match_source``) that this table has."""
    base = {b: b for b in ("plain", "random") if b in runs}
    for pattern in versus:
        if (name := match_source(runs, pattern)) is not None:
            base[pattern] = name
    out = ["| key states | BC seeds | seen | unseen | plain seen / unseen | "
           + " | ".join(f"vs {b}, {split}" for b in base for split in ("seen", "unseen"))
           + " |", "|---|---|---|---|---|" + "---|" * (2 * len(base))]
    for name, by_seed in runs.items():
        seeds = sorted(s for s in by_seed if s in runs["plain"] and (only_seeds is None or s in only_seeds))
        if not seeds:
            continue
        mean = lambda d, i: sum(d[s][i] for s in seeds) / len(seeds)
        cells = []
        for b, ref_name in base.items():
            ref = runs[ref_name]
            for i in (0, 1):
                pairs = [by_seed[s][i] - ref[s][i] for s in seeds if s in ref]
                w, l = sum(d > 1e-9 for d in pairs), sum(d < -1e-9 for d in pairs)
                cells.append("—" if ref_name == name or not pairs
                             else f"{w} / {len(pairs) - w - l} / {l} ({sign_test(w, l):.2f})")
        out.append(f"| {name} | {','.join(map(str, seeds))} | {mean(by_seed, 0):.3f} | {mean(by_seed, 1):.3f} | "
                   f"{mean(runs['plain'], 0):.3f} / {mean(runs['plain'], 1):.3f} | " + " | ".join(cells) + " |")
    return out


def report(text: str, task: str, demos: int = DEFAULT_DEMOS, seeds=None, versus=()) -> str:
    """The pooled tables of one task's saved runs with ``demos`` demos, one per demo set
    that has plain-BC rows ('' if none has)."""
    out = []
    for demo_set in demo_sets(text, demos):
        runs = collect(text, demos=demos, demo_set=demo_set)
        if "plain" not in runs:
            continue
        out.append(f"{task}: saved bc_guidance runs with {demos} demos ("
                   + (f"demo set {demo_set}" if demo_set else "demo set not printed")
                   + f"), {' '.join(SETTINGS)}, {EPOCHS} epochs, "
                   "50 episodes per split and BC seed; means over the BC seeds shared with plain BC; "
                   "paired: seeds where the source's success is above / equal / below the baseline's "
                   "(sign-test p)\n\n" + "\n".join(table(runs, seeds, versus)) + "\n")
    return "\n".join(out)


def summary(results: Path) -> str:
    """summary.md: ``report`` for every task file (``<Task>.md``) and demo count in it."""
    out = ["# Saved bc_guidance runs pooled over BC seeds\n",
           "Written by `python integrations/maniskill/experiments/bc_summary.py --all`, which reruns nothing: each table "
           "is computed from the saved tables in this folder.\n"]
    for path in sorted(results.glob("*.md")):
        if "-" in path.stem or path.stem == "summary":  # e.g. PickCube-regenerated-demos: a record, not pooled
            continue
        text = path.read_text()
        for demos in sorted({demo_count(cmd) for cmd, _, _ in sections(text)}, reverse=True):
            body = report(text, path.stem, demos)
            if body:
                flag = "" if demos == DEFAULT_DEMOS else f" --demos {demos}"
                out.append(f"## `python integrations/maniskill/experiments/bc_summary.py --task {path.stem}{flag}`\n\n{body}")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="StackCube")
    p.add_argument("--results", default=str(Path(__file__).parent / "results" / "bc_guidance"))
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="BC seeds to pool (default: all)")
    p.add_argument("--demos", type=int, default=DEFAULT_DEMOS, help="pool the runs with this many demos")
    p.add_argument("--versus", nargs="+", default=(), metavar="SOURCE",
                   help="also pair every source with these: a source's name as printed, with or "
                        "without its '(… steps)', or a substring of one source's name")
    p.add_argument("--all", action="store_true", help="write summary.md for every task and demo count")
    a = p.parse_args(argv)
    if a.all:
        Path(a.results, "summary.md").write_text(summary(Path(a.results)))
        print(f"wrote {Path(a.results, 'summary.md')}")
        return
    body = report(Path(a.results, f"{a.task}.md").read_text(), a.task, a.demos, a.seeds, a.versus)
    if not body:
        raise SystemExit(f"no plain-BC rows with settings {SETTINGS} and --demos {a.demos} in {a.task}.md")
    print(body)


if __name__ == "__main__":
    main()
