"""The chain-of-thought transformer policy (integrations/maniskill/cotpc.py) on random data, and
the quick path of its gate experiment (simulator, marker ``maniskill``)."""
import importlib.util
import json

import numpy as np
import pytest
import torch

from infoatlas_loss.integrations.maniskill.cotpc import (CoTConfig, CoTPolicy, WindowActor, attention_mask,
                                                         train_cotpc)
from infoatlas_loss.integrations.maniskill.demos import Demo
from tests.test_maniskill import HAS_MANISKILL, planted
from tests.test_maniskill_experiments import experiment

pytestmark = pytest.mark.usefixtures("one_thread")  # small models: one thread is fastest
TINY = CoTConfig(window=6, width=16, layers=2, heads=2, chunk=2, epochs=1, batch=16, log_every=5)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def demos_ee(num: int):
    """Synthetic demos (``planted``) whose actions are end-effector deltas (cloned as they are)."""
    demos = planted(num)
    for d in demos:
        d.control_mode = "pd_ee_delta_pose"
    return demos


@pytest.mark.parametrize("keys", [0, 3])
def test_forward_shapes(keys):
    policy = CoTPolicy(5, 4, keys, TINY, generator=gen())
    actions, key_states = policy(torch.randn(2, 6, 5, generator=gen(1)))
    assert actions.shape == (2, 6, 2 * 4)  # two-action chunks
    assert (key_states is None) if keys == 0 else (key_states.shape == (2, 6, 3, 5))
    short, _ = policy(torch.randn(2, 3, 5, generator=gen(1)))  # a window shorter than W (episode start)
    assert short.shape == (2, 3, 8)
    with pytest.raises(ValueError, match="at most window"):
        policy(torch.randn(1, 7, 5))


def test_initialisation_comes_from_the_generator():
    a, b, c = (CoTPolicy(5, 4, 2, TINY, generator=gen(s)) for s in (0, 0, 1))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["queries"], sc["queries"])


def test_mask_sees_only_earlier_states_and_its_own_step():
    mask = attention_mask(3, 2)  # tokens: [s0 c0 c0 s1 c1 c1 s2 c2 c2]
    assert mask.shape == (9, 9)
    assert mask[3].tolist() == [1, 0, 0, 1, 1, 1, 0, 0, 0]  # s1: s0, and its own step
    assert mask[7].tolist() == [1, 0, 0, 1, 0, 0, 1, 1, 1]  # a step-2 query token
    assert not mask[:3, 3:].any()  # step 0 sees nothing later


@pytest.mark.parametrize("keys, actions", [(0, False), (2, False), (2, True)])
def test_changing_a_later_step_leaves_earlier_actions(keys, actions):
    config = CoTConfig(window=6, width=16, layers=2, heads=2, actions=actions)
    policy = CoTPolicy(5, 4, keys, config, generator=gen()).eval()
    s, prev = torch.randn(1, 6, 5, generator=gen(1)), torch.randn(1, 6, 4, generator=gen(2))
    s2, prev2 = s.clone(), prev.clone()
    s2[:, 4], prev2[:, 4] = s2[:, 4] + 3.0, prev2[:, 4] - 3.0
    with torch.no_grad():
        a, k = policy(s, prev if actions else None)
        b, k2 = policy(s2, prev2 if actions else None)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)
    if keys:
        assert torch.allclose(k[:, :4], k2[:, :4], atol=1e-6)


def test_key_state_loss_decreases_on_a_toy_problem():
    # each demo hovers around its own point, so its key states can be read off any window
    rng = np.random.default_rng(0)
    demos = []
    for i in range(16):
        centre = rng.standard_normal(3)
        states = (centre + 0.1 * rng.standard_normal((21, 3))).astype(np.float32)
        demos.append(Demo(i, states, rng.standard_normal((20, 2)).astype(np.float32), {}, "pd_ee_delta_pose"))
    keys = np.tile([5, 15], (16, 1))
    trained = train_cotpc(demos, keys, CoTConfig(window=6, width=16, heads=2, epochs=10, batch=32, log_every=5),
                          generator=gen(), progress=False)
    curve = np.asarray(trained.curve)
    assert curve[-1, 2] < 0.3 * curve[0, 2]
    plain = train_cotpc(demos, None, TINY, generator=gen(), progress=False)
    assert plain.policy.num_keys == 0 and all(k == 0.0 for _, _, k in plain.curve)


def test_training_is_reproducible_from_the_generator():
    demos = demos_ee(6)
    keys = np.array([[d.events["key"]] for d in demos])
    a, b = (train_cotpc(demos, keys, TINY, generator=gen(3), progress=False) for _ in range(2))
    assert a.curve == b.curve


def test_window_actor_runs_step_by_step():
    demos = demos_ee(6)
    trained = train_cotpc(demos, None, CoTConfig(window=6, width=16, heads=2, chunk=1, epochs=1),
                          generator=gen(), progress=False)
    actor = WindowActor(trained, max_steps=20)
    first = [actor(demos[0].states[t]) for t in range(9)]  # longer than the window
    assert all(a.shape == (8,) for a in first)
    actor.reset()
    assert np.allclose(actor(demos[0].states[0]), first[0], atol=1e-6)
    with torch.no_grad():  # step 8 reads steps 3..8
        whole = trained.policy(torch.as_tensor(trained.state_norm(demos[0].states[3:9]), dtype=torch.float32)[None])[0]
    assert np.allclose(trained.action_norm.inverse(whole[0, -1].numpy()), first[8], atol=1e-5)
    # with chunks, step 1 executes the mean of what steps 0 and 1 predicted for it
    chunked = train_cotpc(demos, None, TINY, generator=gen(), progress=False)
    actor = WindowActor(chunked, max_steps=20)
    actor(demos[0].states[0])
    plan0 = actor.plans[1, 1].copy()
    assert np.allclose(actor(demos[0].states[1]), chunked.action_norm.inverse((plan0 + actor.plans[1, 0]) / 2))


@pytest.mark.parametrize("bad, match", [
    ({"window": 0}, "window"), ({"heads": 3}, "multiple of heads"), ({"lr": -1.0}, "lr"),
    ({"epochs": 0}, "epochs"), ({"noise": -0.1}, "noise")])
def test_config_validation(bad, match):
    with pytest.raises(ValueError, match=match):
        CoTConfig(**bad)


def test_training_checks_its_inputs():
    demos = demos_ee(4)
    with pytest.raises(ValueError, match="rows of key states"):
        train_cotpc(demos, np.ones((3, 1), dtype=int), TINY, progress=False)
    demos[0].control_mode = "pd_joint_pos"
    with pytest.raises(ValueError, match="mix control modes"):
        train_cotpc(demos, None, TINY, progress=False)


def test_gate_sign_test_and_summary():
    gate = experiment("cotpc_gate")
    assert gate.sign_test([0.5, 0.6, 0.4], [0.4, 0.6, 0.5]) == {"above": 1, "equal": 1, "below": 1, "p": 1.0}
    runs = {(v, s): {"seen": [True] * (s + (v == "oracle")), "unseen": [False] * 3,
                     "train_seconds": 1.0, "eval_seconds": 1.0}
            for v in gate.VARIANTS for s in range(1, 7)}
    summary = gate.summarize("PickCube", runs, list(range(8)))
    assert summary["seeds"] == list(range(1, 7))  # only the seeds every variant has
    assert summary["tests"]["oracle vs none"]["both"]["above"] == 6
    assert summary["gate_pass"]  # 6 of 6 above: p = 0.03


@pytest.mark.maniskill
@pytest.mark.slow
@pytest.mark.skipif(not HAS_MANISKILL, reason="needs the maniskill extra")
def test_gate_quick_path_writes_and_resumes(tmp_path):
    gate = experiment("cotpc_gate")
    args = ["--quick", "--out", str(tmp_path), "--cache", str(tmp_path / "demos")]
    gate.main(args)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["summaries"][0]["seeds"] == [0]
    assert {p.name for p in tmp_path.iterdir()} >= {"results.json", "results.md", "curves.png", "runs"}
    assert (tmp_path / "results.md").read_text().startswith("`python integrations/maniskill/experiments/cotpc_gate.py")
    stamp = (tmp_path / "runs" / "PickCube-oracle-seed0.json").stat().st_mtime
    gate.main(args)  # resumes: every run is read back, none retrained
    assert (tmp_path / "runs" / "PickCube-oracle-seed0.json").stat().st_mtime == stamp
