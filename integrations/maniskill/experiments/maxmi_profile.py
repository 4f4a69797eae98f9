"""Where along a demo is the MaxMI objective high?  The MI profile around physical events.

    python integrations/maniskill/experiments/maxmi_profile.py --task PickCube --demos 300

For every event (e.g. grasp, placed) and every offset o, takes the state at event + o in
each demo and its state dt steps earlier, and estimates I(s_key; s_key-dt) across the
demos with ``SlicedMILoss`` (the quantity MaxMI key-state discovery maximises, here at
hard, event-aligned steps instead of learned ones).  A key-state criterion that finds an
event should peak at offset 0.  Also prints the profile at fixed absolute steps.  Mean over
``--repeats`` independent slice draws; nats.  Needs the ``maniskill`` extra and the demo
cache (``examples/maniskill_maxmi.py`` fills it).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from infoatlas_loss import SlicedMILoss
from infoatlas_loss.integrations.maniskill import KeyStateConfig, generate_demos, get_task
from infoatlas_loss.integrations.maniskill.keystates import dynamic_columns, pad_trajectories, shifted


def profile(states, prior, dynamic, steps, repeats: int, num_slices: int) -> np.ndarray:
    """MI (nats) across demos between the states at ``steps`` (N, P) and their priors. (P,)."""
    rows = torch.arange(states.shape[0])[:, None]
    steps = torch.as_tensor(np.ascontiguousarray(steps))
    key = states[rows, steps][..., dynamic].transpose(0, 1)  # (P, N, D')
    pre = prior[rows, steps][..., dynamic].transpose(0, 1)
    out = []
    for r in range(repeats):
        mi = SlicedMILoss(num_slices=num_slices, reduction="none",
                          generator=torch.Generator().manual_seed(r))
        with torch.no_grad():
            out.append(mi(key, pre).numpy())
    return np.mean(out, 0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PickCube")
    p.add_argument("--demos", type=int, default=300)
    p.add_argument("--dt", type=int, default=KeyStateConfig.dt)
    p.add_argument("--offsets", type=int, nargs=3, default=[-30, 16, 3], metavar=("START", "STOP", "STEP"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--num-slices", type=int, default=64)
    p.add_argument("--cache", default="demos")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    demos = generate_demos(args.task, args.demos, cache_dir=args.cache, progress=False)
    states, _ = pad_trajectories(demos)
    prior = shifted(states, args.dt)
    dynamic = dynamic_columns(demos)  # the columns discover_key_states reads
    last = np.array([d.length - 1 for d in demos])
    offsets = list(range(*args.offsets))
    print(f"# MaxMI profile, {args.task}, {len(demos)} demos, dt={args.dt}, "
          f"{args.num_slices} slices x {args.repeats} (nats)\n")
    print("| aligned at | " + " | ".join(f"{o:+d}" for o in offsets) + " |")
    print("|---|" + "---|" * len(offsets))
    for event in get_task(args.task).events:
        at = np.array([d.events[event] for d in demos])
        steps = np.clip(at[:, None] + np.array(offsets)[None], args.dt, last[:, None])
        mi = profile(states, prior, dynamic, steps, args.repeats, args.num_slices)
        print(f"| {event} (mean step {at.mean():.1f}) | " + " | ".join(f"{v:.2f}" for v in mi) + " |")
    absolute = list(range(args.dt, int(last.min()) + 1, 5))
    steps = np.broadcast_to(np.array(absolute)[None], (len(demos), len(absolute)))
    mi = profile(states, prior, dynamic, steps, args.repeats, args.num_slices)
    print("\n| step | " + " | ".join(str(t) for t in absolute) + " |")
    print("|---|" + "---|" * len(absolute))
    print("| MI | " + " | ".join(f"{v:.2f}" for v in mi) + " |")


if __name__ == "__main__":
    main()
