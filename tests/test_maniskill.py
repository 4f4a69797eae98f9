"""ManiSkill integration: key-state locator, MaxMI loss and BC on synthetic trajectories
(no simulator), plus a real-simulator smoke test (marker ``maniskill``)."""
import importlib.util

import numpy as np
import pytest
import torch

from infoatlas_loss.integrations.maniskill.demos import Demo
from infoatlas_loss.integrations.maniskill.keystates import (KeyStateConfig, KeyStateLocator, consensus,
                                                             discover_key_states, first_reach, key_state_error,
                                                             pad_trajectories, random_key_states, shifted)
from infoatlas_loss.integrations.maniskill.policy import (ChunkedActor, evaluate, evaluation_seeds,
                                                         from_relative, subgoal_targets, to_relative, train_bc)
from infoatlas_loss.integrations.maniskill.rl import fit_phase, phase_targets

HAS_MANISKILL = importlib.util.find_spec("mani_skill") is not None
HAS_SB3 = importlib.util.find_spec("stable_baselines3") is not None


def discover(demos, k, model=None, **config):
    """discover_key_states with the example's config changed by ``config``, quietly."""
    return discover_key_states(demos, k, KeyStateConfig(**config), model=model, progress=False)


def planted(num: int = 48, dim: int = 3, dt: int = 4, seed: int = 0) -> list[Demo]:
    """Noise trajectories of varying length with one hold per demo (like a gripper closing
    on an object): the state stays put from ``key - dt`` to ``key + 2``, so only there does
    s_t share information with s_{t - dt}.  The event is the step ``key``."""
    rng = np.random.default_rng(seed)
    demos = []
    for i in range(num):
        length = int(rng.integers(30, 41))
        states = rng.standard_normal((length + 1, dim)).astype(np.float32)
        key = int(rng.integers(10, length - 5))
        states[key - dt:key + 3] = states[key - dt] + 0.05 * rng.standard_normal((dt + 3, dim))
        demos.append(Demo(i, states, rng.standard_normal((length, 8)).astype(np.float32), {"key": key}))
    return demos


def test_pad_and_shift():
    demos = planted(4)
    states, mask = pad_trajectories(demos)
    lengths = [len(d.states) for d in demos]
    assert states.shape == (4, max(lengths), 3) and mask.sum(1).tolist() == lengths
    # edge padding repeats the last (z-scored) state
    i = int(np.argmin(lengths))
    assert torch.equal(states[i, lengths[i]:], states[i, lengths[i] - 1].expand_as(states[i, lengths[i]:]))
    prior = shifted(states, 4)
    assert torch.equal(prior[:, 10], states[:, 6]) and torch.equal(prior[:, 2], states[:, 0])


def test_locator_is_a_distribution_over_valid_steps():
    demos = planted(5)
    states, mask = pad_trajectories(demos)
    logp = KeyStateLocator(3, 2)(states, mask)
    p = logp.exp()
    assert p.shape == (5, 2, states.shape[1])
    assert torch.allclose(p.sum(-1), torch.ones(5, 2), atol=1e-5)
    assert (p[~mask.unsqueeze(1).expand_as(p)] == 0).all()


def test_locator_reads_state_change_and_time():
    assert KeyStateLocator(3, 2).net[0].in_channels == 7  # state, its change over dt, time


def test_greedy_order_keeps_each_concept_after_the_previous_one():
    demos = planted(6)
    states, mask = pad_trajectories(demos)
    p = KeyStateLocator(3, 3, gap=0.2)(states, mask).exp()  # (N, K, T)
    assert torch.allclose(p.sum(-1), torch.ones(6, 3), atol=1e-5)
    lengths = mask.sum(1)
    for i in range(6):
        last = int(lengths[i]) - 1
        for k in range(1, 3):
            start = min(int(p[i, k - 1].argmax()) + int(np.ceil(0.2 * int(lengths[i]))), last)
            support = torch.nonzero(p[i, k] > 0).flatten()
            assert int(support.min()) == start and int(support.max()) == last
    # a gap longer than what is left leaves exactly the last valid step, never nothing
    p = KeyStateLocator(3, 2, gap=0.99)(states, mask).exp()
    assert torch.equal(p[:, 1].argmax(-1), lengths - 1) and (p[:, 1].max(-1).values == 1).all()


@pytest.mark.slow
def test_maxmi_finds_planted_key_state():
    # shipped weights: the hold is the only dependence between s_t and s_{t-4}
    demos = planted(64)
    res = discover(demos, 1, steps=120, contrast_gap=0, vote="median", guard=0)
    err = key_state_error(demos, res.indices, ("key",))["key"]
    chance = key_state_error(demos, random_key_states(demos, 1), ("key",))["key"]
    assert chance > 6 and err < 0.5 * chance, (err, chance)
    assert res.history[-1] > res.history[0]
    assert len(res.trace) >= 12 and res.trace[-1][0] == pytest.approx(res.seconds)


def test_mine_baseline_runs_and_respects_time_budget(tiny):
    demos = planted(20)
    res = discover_key_states(demos, 2, KeyStateConfig(estimator="mine", steps=10_000), max_seconds=0.5,
                              progress=False)
    assert res.indices.shape == (20, 2) and res.seconds < 5
    assert all(np.isfinite(res.history))


def test_per_term_mine_critics_are_independent():
    from infoatlas_loss.integrations.mine import MINECritic
    critic = MINECritic(3, 4, hidden=16, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(4, 32, 3), torch.randn(4, 32, 3)
    out = critic(x, y, torch.Generator().manual_seed(1))
    assert out.shape == (4,) and torch.isfinite(out).all()
    out[0].backward()
    first = critic.net[0].weight.grad
    assert first[0].abs().sum() > 0 and (first[1:] == 0).all()  # term 0 trains only critic 0
    x2 = x.clone()
    x2[1:] += 1.0  # other terms' samples do not move term 0's bound
    critic.log_ma = None  # the same moving-average state as the first call
    out2 = critic(x2, y, torch.Generator().manual_seed(1))
    assert torch.allclose(out2[0], out[0].detach())
    with pytest.raises(ValueError, match="4 terms"):
        critic(x[:2], y[:2], torch.Generator())


def test_mine_bound_is_the_dv_bound_with_the_corrected_gradient():
    from infoatlas_loss.integrations.mine import mine_bound
    joint, marg = torch.randn(3, 50, requires_grad=True), torch.randn(3, 40, requires_grad=True)
    bound, log_ma = mine_bound(joint, marg, None)
    dv = joint.mean(-1) - (marg.exp().mean(-1)).log()
    assert torch.allclose(bound, dv) and torch.allclose(log_ma, marg.exp().mean(-1).log())
    bound.sum().backward()  # first call: moving average = this batch, so grad = grad of DV
    grad = marg.grad.clone()
    marg.grad = None
    dv.sum().backward()
    assert torch.allclose(grad, marg.grad)
    # a moving average twice this batch's mean e^T halves the marginal term's gradient
    marg.grad = None
    mine_bound(joint, marg, log_ma + np.log(2.0))[0].sum().backward()
    assert not torch.allclose(marg.grad, grad)


def test_gradients_reach_the_locator(tiny):
    demos = planted(20)
    res = discover(demos, 2, tiny, steps=2)
    assert res.indices.shape == (20, 2) and np.isfinite(res.history).all()


@pytest.mark.parametrize("estimator", ["infoatlas", "mine"])
@pytest.mark.parametrize("contrast_gap", [0, 12])
def test_objective_runs_for_both_estimators(tiny, estimator, contrast_gap):
    demos = planted(20)
    res = discover(demos, 2, tiny, estimator=estimator, steps=3, restarts=2, contrast_gap=contrast_gap)
    assert res.indices.shape == (20, 2) and np.isfinite(res.history).all()
    assert res.estimator == estimator


def test_discovery_is_deterministic_for_a_generator(tiny):
    demos = planted(20)
    run = lambda seed: discover_key_states(demos, 2, KeyStateConfig(steps=3, restarts=2), model=tiny,  # noqa: E731
                                           generator=torch.Generator().manual_seed(seed), progress=False)
    a, b, c = run(0), run(0), run(1)
    assert np.array_equal(a.probs, b.probs) and a.history == b.history
    assert not np.array_equal(a.probs, c.probs)


def test_config_defaults_and_command_line():
    import argparse
    p = argparse.ArgumentParser()
    KeyStateConfig.add_arguments(p, skip=("trace_every",))
    assert KeyStateConfig.from_args(p.parse_args([])) == KeyStateConfig()
    cfg = KeyStateConfig.from_args(p.parse_args(["--contrast-gap", "0", "--vote", "median", "--order-gap", "0.2"]))
    assert (cfg.contrast_gap, cfg.vote, cfg.order_gap, cfg.steps) == (0, "median", 0.2, 200)
    with pytest.raises(SystemExit):
        p.parse_args(["--trace-every", "3"])
    with pytest.raises(Exception):
        KeyStateConfig().steps = 5  # frozen


def test_consensus_is_the_median_restart_and_keeps_order():
    idx = torch.tensor([[[3, 9]], [[40, 41]], [[4, 10]]])  # (R=3, N=1, K=2); restart 2 scattered
    assert consensus(idx).tolist() == [[4, 10]]
    assert consensus(idx[:2]).tolist() == [[3, 9]]  # an even count takes the lower median
    g = torch.Generator().manual_seed(0)
    ordered = torch.randint(0, 50, (5, 30, 3), generator=g).sort(-1).values
    med = consensus(ordered)
    assert med.shape == (30, 3) and (med[:, 1:] >= med[:, :-1]).all()


def test_agreeing_consensus_follows_the_restarts_that_agree():
    from infoatlas_loss.integrations.maniskill.keystates import agreeing_consensus
    g = torch.Generator().manual_seed(0)
    event = torch.randint(20, 40, (30,), generator=g)  # (N,) an event step per demo
    late = event + 40 + torch.randint(-6, 7, (2, 30), generator=g)  # two restarts near a later event
    locked = event + torch.tensor([[0], [1]])  # two restarts on the event (one a step late)
    scattered = torch.randint(0, 100, (1, 30), generator=g)
    first = torch.cat([late, locked, scattered])  # (R=5, N): 3 of 5 miss the event
    second = event + 60 + torch.zeros(5, 1, dtype=torch.long)  # every restart agrees
    idx = torch.stack([first, second], dim=-1)  # (R, N, K)
    assert (consensus(idx)[:, 0] - event).abs().float().mean() > 5  # the median mixes them
    agreed = agreeing_consensus(idx)
    assert agreed[:, 0].tolist() == event.tolist()  # the lower median of the two locked ones
    assert agreed[:, 1].tolist() == (event + 60).tolist()
    assert (agreed[:, 1:] >= agreed[:, :-1]).all()
    assert torch.equal(agreeing_consensus(idx[:2]), consensus(idx[:2]))  # two restarts: the median


def test_phase_guard_moves_only_key_states_at_an_outlying_phase():
    from infoatlas_loss.integrations.maniskill.keystates import phase_guard
    rng = np.random.default_rng(0)
    lengths = rng.integers(90, 111, 40)  # (N,) last state index per demo
    grasp = np.round(lengths * rng.uniform(0.42, 0.48, 40)).astype(int)
    idx = np.stack([grasp, lengths], 1)  # (N, K=2): concept 2 at the demo's end
    idx[7, 0] = lengths[7] - 6  # a look-alike event near the end
    probs = np.zeros((40, 2, 111))
    probs[7, 0, lengths[7] - 6] = 0.6  # the wrong peak is the strongest ...
    probs[7, 0, grasp[7] - 1] = 0.3  # ... a weaker one sits at the concept's usual phase
    out = phase_guard(idx, probs, lengths, 4.0)
    assert out[7].tolist() == [grasp[7] - 1, lengths[7]]
    keep = np.arange(40) != 7
    assert (out[keep] == idx[keep]).all()  # every other key state stays
    assert (out[:, 1:] >= out[:, :-1]).all()


def test_restarts_train_side_by_side(tiny):
    demos = planted(20)
    res = discover(demos, 2, tiny, steps=3, restarts=3, vote="median", guard=0)
    assert res.probs.shape[:3] == (3, 20, 2) and np.allclose(res.probs.sum(-1), 1, atol=1e-5)
    assert np.array_equal(res.indices, consensus(torch.as_tensor(res.probs.argmax(-1))).numpy())
    assert all(idx.shape == (20, 2) for _, idx in res.trace)
    one = discover(demos, 2, tiny, steps=3, restarts=1, guard=0)
    assert one.probs.shape[0] == 1 and np.array_equal(one.indices, one.probs[0].argmax(-1))
    with pytest.raises(ValueError, match="restarts"):
        KeyStateConfig(restarts=0)
    with pytest.raises(ValueError, match="vote"):
        KeyStateConfig(vote="mean")
    with pytest.raises(ValueError, match="guard"):
        KeyStateConfig(guard=-1)
    guarded = discover(demos, 2, tiny, steps=3, restarts=3, vote="median", guard=4.0)
    from infoatlas_loss.integrations.maniskill.keystates import phase_guard
    lengths = np.array([d.length for d in demos])
    assert np.array_equal(guarded.indices, phase_guard(res.indices, res.probs.mean(0), lengths, 4.0))
    agreed = discover(demos, 2, tiny, steps=3, restarts=3, vote="agree", guard=0)
    from infoatlas_loss.integrations.maniskill.keystates import agreeing_consensus
    assert np.array_equal(agreed.indices, agreeing_consensus(torch.as_tensor(agreed.probs.argmax(-1))).numpy())


def test_first_reach():
    demos = planted(10)
    exact = np.array([[d.events["key"]] for d in demos])
    trace = [(0.0, exact + 9), (1.0, exact + 3), (2.0, exact)]
    assert first_reach(trace, demos, ("key",), 3.0) == 1.0
    assert first_reach(trace, demos, ("key",), 0.0) == 2.0
    assert first_reach(trace[:2], demos, ("key",), 0.0) is None


def test_bad_inputs(tiny):
    with pytest.raises(ValueError, match="contrast_gap"):
        KeyStateConfig(contrast_gap=4)
    with pytest.raises(ValueError, match="order_gap"):
        KeyStateConfig(order_gap=1.5)
    with pytest.raises(ValueError, match="estimator"):
        KeyStateConfig(estimator="ksg")
    with pytest.raises(ValueError, match="need >= 16"):
        discover(planted(8), 1, tiny)
    with pytest.raises(ValueError, match="mi_from"):
        discover(planted(20), 1, tiny, mi_from=3)
    r = discover(planted(20), 1, tiny, mi_from=1, steps=2)
    assert r.indices.shape == (20, 1)


def test_key_state_error_and_random_control():
    demos = planted(10)
    exact = np.array([[d.events["key"]] for d in demos])
    assert key_state_error(demos, exact, ("key",)) == {"key": 0.0, "mean": 0.0}
    assert key_state_error(demos, exact + 3, ("key",))["mean"] == 3.0
    r = random_key_states(demos, 3, seed=1)
    assert r.shape == (10, 3) and (np.diff(r, axis=1) > 0).all()
    assert all(1 <= r[i].min() and r[i].max() <= d.length for i, d in enumerate(demos))


def test_subgoal_targets_point_to_the_next_key_state():
    d = planted(1)[0]
    goals = subgoal_targets(d, np.array([5, 12]))
    assert np.array_equal(goals[0], d.states[5]) and np.array_equal(goals[4], d.states[5])
    assert np.array_equal(goals[5], d.states[12]) and np.array_equal(goals[-1], d.states[-1])


def test_evaluation_seeds():
    demos = planted(16)
    seen, unseen = evaluation_seeds(demos, 5)
    assert seen == [d.seed for d in demos[:5]] and unseen == list(range(10 ** 6, 10 ** 6 + 5))
    assert evaluation_seeds(demos, 5, offset=2)[1] == list(range(10 ** 6 + 10, 10 ** 6 + 15))
    assert not set(seen) & set(unseen)


def test_relative_actions_round_trip():
    s, a = np.random.rand(6, 12), np.random.rand(6, 8)
    assert np.allclose(from_relative(s, to_relative(s, a)), a)


@pytest.mark.parametrize("guided, goal_from, condition, chunk", [
    (False, 0, True, 1), (True, 0, True, 1), (True, 4, True, 1), (True, 4, False, 1), (False, 0, True, 4),
    (True, 4, True, 3)])
def test_bc_fits_synthetic_demos(guided, goal_from, condition, chunk):
    demos = planted(16, dim=12)
    for d in demos:  # actions = a fixed linear function of the state
        d.actions = d.states[:-1, :8] * 0.5 + 1.0
    keys = np.array([[d.events["key"]] for d in demos]) if guided else None
    trained = train_bc(demos, keys, epochs=60, noise=0.0, goal_from=goal_from,
                       condition=condition, chunk=chunk, progress=False)
    policy, sn, an = trained.policy, trained.state_norm, trained.action_norm
    s = torch.as_tensor(sn(demos[0].states[:-1]), dtype=torch.float32)
    with torch.no_grad():
        pred, goal = policy(s)
    assert pred.shape == (len(s), 8 * chunk) and policy.chunk == chunk
    # the first action of every chunk is the current one (later ones are the next states')
    pred = from_relative(demos[0].states[:-1], an.inverse(pred[:, :8].numpy()))
    assert np.abs(pred - demos[0].actions).mean() < 0.1
    assert (goal is not None) == guided
    if guided:
        assert goal.shape == (len(s), 12 - goal_from)


def test_chunk_targets_and_bad_bc_inputs():
    demos = planted(16, dim=12)
    for d in demos:  # ee-delta demos: actions used as they are, so targets are easy to read
        d.control_mode = "pd_ee_delta_pose"
        d.actions = np.arange(d.length, dtype=np.float32)[:, None].repeat(8, 1)
    trained = train_bc(demos, None, epochs=200, noise=0.0, chunk=3, progress=False)
    policy, sn, an = trained.policy, trained.state_norm, trained.action_norm
    with torch.no_grad():
        pred = an.inverse(policy(torch.as_tensor(sn(demos[0].states[:-1]), dtype=torch.float32))[0]
                          .reshape(-1, 3, 8).numpy())
    t_last = demos[0].length - 1  # past the end the last action repeats
    assert np.allclose(pred[:, :, 0].mean(0) - pred[:, 0, 0].mean(), [0, 1, 2], atol=0.5)
    assert abs(pred[-1, 2, 0] - t_last) < 1.5
    with pytest.raises(ValueError, match="chunk"):
        train_bc(demos, None, epochs=1, chunk=0, progress=False)
    demos[0].control_mode = "pd_joint_pos"
    with pytest.raises(ValueError, match="mix control modes"):
        train_bc(demos, None, epochs=1, progress=False)


def test_chunked_actor_executes_the_mean_of_all_predictions_for_a_step():
    demos = planted(16, dim=12)
    for d in demos:
        d.control_mode = "pd_ee_delta_pose"
    trained = train_bc(demos, None, epochs=2, chunk=3, progress=False)
    policy, sn, an = trained.policy, trained.state_norm, trained.action_norm
    states = demos[0].states[:4]
    with torch.no_grad():
        preds = an.inverse(policy(torch.as_tensor(sn(states), dtype=torch.float32))[0]
                           .reshape(-1, 3, 8).numpy())  # (t, age, A): made at t for t + age
    actor = ChunkedActor(trained, max_steps=10)
    got = [actor(s) for s in states]
    assert np.allclose(got[0], preds[0, 0], atol=1e-5)
    assert np.allclose(got[1], (preds[0, 1] + preds[1, 0]) / 2, atol=1e-5)
    assert np.allclose(got[3], (preds[1, 2] + preds[2, 1] + preds[3, 0]) / 3, atol=1e-5)
    actor.reset()
    assert np.allclose(actor(states[0]), got[0])
    short = ChunkedActor(trained, max_steps=2)
    for s in states[:3]:
        short(s)
    with pytest.raises(RuntimeError, match="reset"):
        short(states[3])


def test_phase_targets_and_regressor():
    y = phase_targets(20, [5, 12])
    assert y.shape == (21,) and y[0] == 0 and np.isclose(y[5], 1) and np.isclose(y[12], 2)
    assert np.isclose(y[20], 3) and (np.diff(y) > 0).all()
    assert (np.diff(phase_targets(10, [4, 4])) >= 0).all()  # coinciding key states
    demos = planted(32, dim=4)
    for d in demos:  # the phase is readable from the state: last column = time
        d.states[:, -1] = np.arange(len(d.states)) / len(d.states)
    keys = np.array([[d.length // 3, 2 * d.length // 3] for d in demos])
    from infoatlas_loss.integrations.maniskill import Normalizer
    sn = Normalizer.fit(np.concatenate([d.states for d in demos]))
    phase = fit_phase(demos, keys, sn, epochs=60)
    d = demos[0]
    pred = phase(torch.as_tensor(sn(d.states), dtype=torch.float32)).numpy()
    assert np.abs(pred - phase_targets(d.length, keys[0])).mean() < 0.25
    with pytest.raises(ValueError, match="rows for"):
        fit_phase(demos, keys[:-1], sn, epochs=1)


@pytest.mark.maniskill
@pytest.mark.slow
@pytest.mark.skipif(not HAS_MANISKILL, reason='needs the maniskill extra (pip install ".[maniskill]")')
def test_real_simulator_smoke(tmp_path, tiny):
    from infoatlas_loss.integrations.maniskill import generate_demos, make_env
    demos = generate_demos("PickCube", 16, cache_dir=tmp_path, progress=False)
    assert all(0 < d.events["grasp"] <= d.events["placed"] <= d.length for d in demos)
    assert demos[0].states.shape[1] == 42 and demos[0].actions.shape[1] == 8
    again = generate_demos("PickCube", 16, cache_dir=tmp_path, progress=False)  # from the cache
    assert all(np.array_equal(a.states, b.states) for a, b in zip(demos, again))
    # a demo depends on its seed only, not on the seeds planned before it in the same worker
    from infoatlas_loss.integrations.maniskill.demos import fingerprint
    alone = generate_demos("PickCube", 1, seed=demos[5].seed, cache_dir=tmp_path / "alone", progress=False)
    assert np.array_equal(alone[0].actions, demos[5].actions)
    assert fingerprint(again) == fingerprint(demos) != fingerprint(demos[1:])
    res = discover(demos, 2, tiny, steps=3)
    assert res.indices.shape == (16, 2)
    trained = train_bc(demos, res.indices, epochs=1, progress=False)
    # ten steps are too few to pick up the cube: a run that reports success is broken
    assert evaluate("PickCube", trained, [demos[0].seed, 10 ** 6], max_steps=10) == 0.0
    # end-effector-delta conversion: the replay follows the planner's demo closely
    from infoatlas_loss.integrations.maniskill.convert import to_ee_delta
    ee = to_ee_delta("PickCube", demos[:3], cache_dir=tmp_path, progress=False)
    assert len(ee) == 3 and all(d.control_mode == "pd_ee_delta_pose" for d in ee)
    ee_alone = to_ee_delta("PickCube", demos[2:3], cache_dir=tmp_path / "alone", progress=False)
    assert np.array_equal(ee_alone[0].actions, ee[2].actions)
    for d, e in zip(demos, ee):
        assert e.actions.shape == (d.length, 7) and np.abs(e.actions).max() <= 1
        assert np.abs(e.states[:, :7] - d.states[:, :7]).max() < 0.02  # joints (rad)
        assert all(abs(e.events[k] - d.events[k]) <= 2 for k in d.events)
    trained = train_bc(ee, None, epochs=1, chunk=4, progress=False)
    assert evaluate("PickCube", trained, [10 ** 6], max_steps=10) == 0.0
    with pytest.raises(ValueError, match="control_mode"):
        make_env("PickCube", control_mode="pd_joint_vel")
    if HAS_SB3:  # optional SB3 stage: residual PPO on the BC policy, key-state reward
        from infoatlas_loss.integrations.maniskill.rl import finetune_residual, residual_successes
        keys = np.array([[d.events["grasp"], d.events["placed"]] for d in ee])
        rl = finetune_residual("PickCube", trained, ee, keys, steps=64, n_steps=32,
                               max_steps=10, progress=False)
        assert rl.episodes >= 5 and rl.seconds > 0
        assert residual_successes("PickCube", trained, rl, [10 ** 6], max_steps=10) == [False]
        with pytest.raises(ValueError, match="n_steps"):
            finetune_residual("PickCube", trained, ee, keys, steps=10, n_steps=32, max_steps=10)


def test_load_demos_rejects_an_unknown_control_mode(tmp_path):
    from infoatlas_loss.integrations.maniskill import load_demos
    with pytest.raises(ValueError, match="control_mode"):
        load_demos("PickCube", 2, "pd_joint_vel", cache_dir=tmp_path)
