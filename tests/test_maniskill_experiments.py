"""The ManiSkill experiment scripts (integrations/maniskill/experiments/): how bc_guidance
builds key-state sources and saves a run, and how bc_summary pools saved runs.  No simulator."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from infoatlas_loss.integrations.maniskill.keystates import random_key_states
from tests.test_maniskill import planted

EXPERIMENTS = Path(__file__).resolve().parents[1] / "integrations" / "maniskill" / "experiments"
BC = "python integrations/maniskill/experiments/bc_guidance.py"
SUMMARY = "python integrations/maniskill/experiments/bc_summary.py"
DEMO_SET = "0123456789"  # a demo-set fingerprint as bc_guidance prints it


def experiment(name: str):
    """An experiment script, imported from its file (the scripts are not an installed package)."""
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bc_guidance_mixes_key_state_sources_per_concept():
    mixed_key_states = experiment("bc_guidance").mixed_key_states
    demos = planted(4)
    oracle = np.array([[d.events["key"], d.events["key"] + 2] for d in demos])
    keys = {"plain": None, "oracle": oracle, "random": random_key_states(demos, 2)}
    mixed = mixed_key_states("mix:oracle,end", keys, demos)
    assert mixed.tolist() == [[d.events["key"], d.length] for d in demos]
    swapped = mixed_key_states("mix:random,oracle", keys, demos)
    assert (swapped[:, 1:] >= swapped[:, :-1]).all()  # sorted: used in temporal order
    assert set(swapped.ravel()) <= set(keys["random"][:, 0]) | set(oracle[:, 1])
    with pytest.raises(ValueError, match="2 concepts"):
        mixed_key_states("mix:oracle", keys, demos)
    with pytest.raises(ValueError, match="no key states from"):
        mixed_key_states("mix:plain,end", keys, demos)


def test_bc_guidance_jitters_a_key_state_source():
    jittered_key_states = experiment("bc_guidance").jittered_key_states
    demos = planted(8)
    oracle = np.array([[d.events["key"], d.events["key"] + 2] for d in demos])
    keys = {"plain": None, "oracle": oracle}
    moved = jittered_key_states("jitter:oracle,3", keys, demos)
    assert moved.shape == oracle.shape and (moved[:, 1:] >= moved[:, :-1]).all()
    # sorting and clipping never move a key state further: still within 3 of the oracle's
    assert (np.abs(moved - oracle) <= 3).all() and (moved != oracle).any()
    assert (jittered_key_states("jitter:oracle,0", keys, demos) == oracle).all()
    assert (jittered_key_states("jitter:oracle,3", keys, demos) == moved).all()  # seeded
    for bad in ("jitter:plain,3", "jitter:oracle", "jitter:oracle,-1"):
        with pytest.raises(ValueError, match="jitter:SOURCE,STEPS"):
            jittered_key_states(bad, keys, demos)


def test_bc_guidance_shifts_a_key_state_source_per_concept():
    shifted_key_states = experiment("bc_guidance").shifted_key_states
    demos = planted(4)
    oracle = np.array([[d.events["key"], d.events["key"] + 2] for d in demos])
    keys = {"plain": None, "oracle": oracle}
    assert (shifted_key_states("shift:oracle,-1,0", keys, demos) == oracle - [1, 0]).all()
    # past the end: the demo's last state, as mix:...,end gives it
    assert shifted_key_states("shift:oracle,0,+999", keys, demos)[:, 1].tolist() == [d.length for d in demos]
    assert (shifted_key_states("shift:oracle,+3,-3", keys, demos) == np.sort(oracle + [3, -3], axis=1)).all()
    for bad in ("shift:plain,1,1", "shift:oracle", "shift:oracle,a,1"):
        with pytest.raises(ValueError, match="shift:SOURCE"):
            shifted_key_states(bad, keys, demos)
    with pytest.raises(ValueError, match="2 concepts, got 1"):
        shifted_key_states("shift:oracle,1", keys, demos)


def test_bc_guidance_swaps_single_demos_key_states():
    swapped_key_states = experiment("bc_guidance").swapped_key_states
    demos = planted(4)
    oracle = np.array([[d.events["key"], d.events["key"] + 2] for d in demos])
    other = oracle + 5
    keys = {"plain": None, "oracle": oracle, "infoatlas": other}
    out = swapped_key_states("swap:oracle,infoatlas,1,3", keys)
    assert (out[[0, 2]] == oracle[[0, 2]]).all() and (out[[1, 3]] == other[[1, 3]]).all()
    assert (keys["oracle"] == oracle).all()  # the source itself is left as it was
    for bad in ("swap:oracle,plain,1", "swap:oracle,infoatlas", "swap:oracle,infoatlas,x"):
        with pytest.raises(ValueError, match="swap:SOURCE,OTHER"):
            swapped_key_states(bad, keys)
    with pytest.raises(ValueError, match="out of range"):
        swapped_key_states("swap:oracle,infoatlas,4", keys)


SAVED_BC = f"""# t
## `{BC} --methods plain infoatlas --goal-from 18 --control-mode pd_ee_delta_pose --chunk 8 --vote median`

| method | subgoal from | epochs | BC seed | key-state error | seen | unseen | minutes |
|---|---|---|---|---|---|---|---|
| plain | — | 60 | 0 | — | 0.80 | 0.10 | 1.0 |
| infoatlas | 18 | 60 | 0 | 5.7 | 0.90 | 0.20 | 1.0 |
| plain | — | 60 | 1 | — | 0.70 | 0.10 | 1.0 |
| infoatlas | 18 | 60 | 1 | 5.7 | 0.70 | 0.30 | 1.0 |
| mine | 18 | 60 | 1 | 2.6 | 0.80 | 0.20 | 1.0 |

## `{BC} --methods plain --chunk 1`

| method | subgoal from | epochs | BC seed | key-state error | seen | unseen | minutes |
|---|---|---|---|---|---|---|---|
| plain | — | 60 | 2 | — | 0.10 | 0.00 | 1.0 |
"""


def test_bc_summary_pools_by_source_and_settings():
    s = experiment("bc_summary")
    runs = s.collect(SAVED_BC)
    # the chunk-1 section has other BC settings: left out; the discovery flag and error name the source
    assert runs == {"plain": {0: (0.8, 0.1), 1: (0.7, 0.1)},
                    "infoatlas --vote median (5.7 steps)": {0: (0.9, 0.2), 1: (0.7, 0.3)},
                    "mine --vote median (2.6 steps)": {1: (0.8, 0.2)}}
    assert s.sign_test(8, 0) == pytest.approx(2 / 256)
    assert s.sign_test(0, 0) == 1.0 and s.sign_test(3, 3) == 1.0
    with pytest.raises(ValueError, match="saved twice"):  # a rerun that does not reproduce
        s.collect(SAVED_BC + SAVED_BC.split("# t")[1].replace("| 0.70 | 0.30 |", "| 0.75 | 0.30 |"))
    # a run with fewer demos is its own experiment: kept apart, found with demos=
    fewer = SAVED_BC.replace("bc_guidance.py --methods plain infoatlas", "bc_guidance.py --demos 100 --methods plain infoatlas")
    assert s.collect(fewer) == {}
    assert s.collect(fewer, demos=100)["plain"] == {0: (0.8, 0.1), 1: (0.7, 0.1)}
    # another demo set (another fingerprint) is another experiment too
    first = SAVED_BC.split("# t\n")[1].split("\n## ")[0]
    refit = SAVED_BC + "\n" + first.replace("\n\n| method", f"\n\nPickCube: 2 demos (demo set {DEMO_SET}), "
                                           "50 episodes per split\n\n| method", 1).replace(
        "| 0.80 | 0.10 |", "| 0.60 | 0.10 |", 1)  # plain seed 0 differs on the other demo set
    assert s.demo_sets(refit) == [None, DEMO_SET]
    assert s.collect(refit) == s.collect(SAVED_BC)  # no "saved twice" clash
    assert s.collect(refit, demo_set=DEMO_SET)["plain"] == {0: (0.6, 0.1), 1: (0.7, 0.1)}


def test_bc_summary_all_writes_every_task_and_demo_count(tmp_path):
    s = experiment("bc_summary")
    fewer = SAVED_BC.replace("bc_guidance.py --methods plain infoatlas", "bc_guidance.py --demos 100 --methods plain infoatlas")
    (tmp_path / "PickCube.md").write_text(SAVED_BC + "\n" + fewer.split("# t\n")[1])
    (tmp_path / "StackCube.md").write_text(fewer)
    (tmp_path / "StackCube-record.md").write_text(SAVED_BC)  # a record, not pooled
    s.main(["--all", "--results", str(tmp_path)])
    text = (tmp_path / "summary.md").read_text()
    heads = [line for line in text.splitlines() if line.startswith("## ")]
    assert heads == [f"## `{SUMMARY} --task PickCube`", f"## `{SUMMARY} --task PickCube --demos 100`",
                     f"## `{SUMMARY} --task StackCube --demos 100`"]
    # each section is what the single-task command prints
    for task, demos in (("PickCube", 300), ("PickCube", 100), ("StackCube", 100)):
        assert s.report((tmp_path / f"{task}.md").read_text(), task, demos) in text
    assert "| infoatlas --vote median (5.7 steps) | 0,1 | 0.800 | 0.250 | 0.750 / 0.100 |" in text
    assert text.count("| plain | 0,1 |") == 3


def test_bc_summary_versus_pairs_with_a_named_source(capsys, tmp_path):
    s = experiment("bc_summary")
    rows = s.table(s.collect(SAVED_BC), versus=("infoatlas",))
    assert rows[0].endswith("| vs plain, unseen | vs infoatlas, seen | vs infoatlas, unseen |")
    assert "vs random" not in rows[0]  # no random rows in this table: no random columns
    # plain trails the infoatlas source on seed 0 seen, ties on seed 1; unseen trails on both
    assert rows[2].endswith("| — | — | 0 / 1 / 1 (1.00) | 0 / 0 / 2 (0.50) |")
    assert rows[3].endswith("| — | — |")  # the named source against itself
    assert rows[4].endswith("| 1 / 0 / 0 (1.00) | 0 / 0 / 1 (1.00) |")  # mine, seed 1 only: 0.8 > 0.7, 0.2 < 0.3
    with pytest.raises(SystemExit, match="matches 2 sources"):
        s.table(s.collect(SAVED_BC), versus=("vote median",))
    # a full name (without its error) is exact even where it is a substring of other names
    named = s.table(s.collect(SAVED_BC), versus=("infoatlas --vote median",))
    assert named[0].endswith("| vs infoatlas --vote median, seen | vs infoatlas --vote median, unseen |")
    (tmp_path / "PickCube.md").write_text(SAVED_BC)
    s.main(["--task", "PickCube", "--results", str(tmp_path), "--versus", "mine"])
    assert "| vs mine, seen | vs mine, unseen |" in capsys.readouterr().out


def test_bc_summary_names_sources_by_discovery_flags():
    source_name = experiment("bc_summary").source_name
    cmd = BC + " --methods infoatlas --contrast-gap 0 --restarts {} --discovery-seed {}"
    assert source_name("infoatlas", cmd.format(9, 0), "5.0") == "infoatlas --contrast-gap 0 --restarts 9 (5.0 steps)"
    # default values name nothing: the same key states as a command without them
    assert source_name("infoatlas", cmd.format(5, 0), "4.4") == "infoatlas --contrast-gap 0 (4.4 steps)"
    assert source_name("infoatlas", BC + " --methods infoatlas --guard 4.0 --vote agree", "4.4") == "infoatlas (4.4 steps)"
    assert source_name("oracle", cmd.format(9, 1), "0.0") == "oracle"
    assert source_name("plain", cmd.format(9, 1), "—") == "plain"
    # MINE's own flags name MINE's key states (and mixes with them), not ours
    both = cmd.format(5, 1) + " --mine-steps 500"
    assert source_name("infoatlas", both, "5.3") == "infoatlas --contrast-gap 0 --discovery-seed 1 (5.3 steps)"
    assert source_name("mine", both, "4.1") == "mine --contrast-gap 0 --discovery-seed 1 --mine-steps 500 (4.1 steps)"
    assert source_name("mix:mine,infoatlas", both, "6.5").startswith("mix:mine,infoatlas --contrast-gap 0 --discovery")


def test_bc_guidance_saved_section_is_what_bc_summary_reads():
    saved_section = experiment("bc_guidance").saved_section
    s = experiment("bc_summary")
    argv = ["--task", "StackCube", "--methods", "plain", "infoatlas", "--save", "out.md", "--note", "why, in words",
            "--goal-from", "18", "--control-mode", "pd_ee_delta_pose", "--chunk", "8", "--save=x.md"]
    lines = [f"StackCube: 2 demos (demo set {DEMO_SET}), 50 episodes per split", "",
             "| method | subgoal from | epochs | BC seed | key-state error | seen | unseen | minutes |",
             "|---|---|---|---|---|---|---|---|",
             "| plain | — | 60 | 0 | — | 0.80 | 0.10 | 1.0 |",
             "| infoatlas | 18 | 60 | 0 | 5.7 | 0.90 | 0.20 | 1.0 |"]
    text = saved_section(argv, "why, in words", lines)
    # the command as rerun: where it was saved and its caption are not part of it
    cmd, demo_set, rows = s.sections("# t\n" + text)[0]
    assert cmd == f"{BC} --task StackCube --methods plain infoatlas --goal-from 18 --control-mode pd_ee_delta_pose --chunk 8"
    assert demo_set == DEMO_SET and len(rows) == 2
    assert "\n(why, in words)\n" in text and "(" not in saved_section(argv, None, lines).split("\n")[2]
    assert s.collect(text, demo_set=DEMO_SET) == {"plain": {0: (0.8, 0.1)}, "infoatlas (5.7 steps)": {0: (0.9, 0.2)}}


def test_every_experiment_script_parses_its_options():
    for name in ("bc_guidance", "maxmi_seeds", "maxmi_vs_mine", "maxmi_profile", "bc_summary"):
        module = experiment(name)
        with pytest.raises(SystemExit) as e:
            module.main(["--help"])
        assert e.value.code == 0
