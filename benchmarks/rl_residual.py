"""Does the optional SB3 stage help?  Residual PPO settings on one key-state-guided BC policy.

    python -m benchmarks.rl_residual --task PickCube --lr 1e-4 3e-5 --scale 0.2 0.1

Discovers key states with ``SlicedMILoss`` (default settings), trains the key-state-guided BC
policy of the example once (end-effector deltas, chunk 8, subgoal from column 18), evaluates
it, then for every (learning rate, residual scale) trains ``finetune_residual`` for
``--steps`` env steps from that same policy and evaluates BC + residual on the same seeds:
the first ``--episodes`` demo seeds ("seen") and as many new ones ("unseen", the example's).
Prints a Markdown table.  Needs the ``maniskill`` and ``rl`` extras and the demo cache.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from integrations.maniskill import get_task
from integrations.maniskill.convert import load_demos
from integrations.maniskill.keystates import discover_key_states
from integrations.maniskill.policy import evaluation_seeds, successes, train_bc
from integrations.maniskill.rl import finetune_residual, residual_successes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PickCube")
    p.add_argument("--demos", type=int, default=300)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--steps", type=int, default=50_000, help="PPO env steps per setting")
    p.add_argument("--lr", type=float, nargs="+", default=[1e-4])
    p.add_argument("--scale", type=float, nargs="+", default=[0.2])
    p.add_argument("--residual-cost", type=float, default=0.5)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cache", default="demos")
    a = p.parse_args(argv)
    spec = get_task(a.task)
    demos = load_demos(a.task, a.demos, "pd_ee_delta_pose", cache_dir=a.cache, workers=a.workers,
                       progress=False)
    keys = discover_key_states(demos, len(spec.events), steps=200, progress=False).indices
    trained = train_bc(demos, keys, chunk=8, goal_from=18, progress=False)
    seen, unseen = evaluation_seeds(demos, a.episodes)
    ok = successes(a.task, trained, seen + unseen, max_steps=spec.max_steps, workers=a.workers)
    print(f"{a.task}: {len(demos)} demos, {a.episodes} episodes per split, {a.steps} PPO steps, "
          f"residual cost {a.residual_cost}\n")
    print("| policy | lr | scale | seen | unseen | training episodes (successes) | RL seconds |")
    print("|---|---|---|---|---|---|---|")
    print(f"| BC (InfoAtlas key states) | – | – | {np.mean(ok[:len(seen)]):.2f} | "
          f"{np.mean(ok[len(seen):]):.2f} | – | – |", flush=True)
    for lr in a.lr:
        for scale in a.scale:
            torch.set_num_threads(1)  # one env: the PPO updates are small
            rl = finetune_residual(a.task, trained, demos, keys, steps=a.steps, max_steps=spec.max_steps,
                                   scale=scale, learning_rate=lr, residual_cost=a.residual_cost,
                                   progress=False)
            ok = residual_successes(a.task, trained, rl, seen + unseen, max_steps=spec.max_steps)
            print(f"| BC + PPO residual | {lr:g} | {scale:g} | {np.mean(ok[:len(seen)]):.2f} | "
                  f"{np.mean(ok[len(seen):]):.2f} | {rl.episodes} ({rl.train_successes}) | {rl.seconds:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
