"""Joint-position demos -> end-effector-delta demos, by closed-loop replay in the simulator.

The motion planner commands absolute joint targets (``pd_joint_pos``).  A policy that
clones those must learn the arm's inverse kinematics for every new layout; with
``pd_ee_delta_pose`` it outputs a small end-effector motion that looks alike across the
workspace (our measurement: plain BC on joint targets grasps but rarely carries the cube
to an unseen goal).  ManiSkill's own trajectory tool converts the same way: replay each demo
in an env with the target controller and, at every step, command the end-effector pose the
recorded joint target would reach (forward kinematics), relative to the current pose.
Only replays that still succeed and show every event are kept; each is cached per seed.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .common import map_jobs
from .demos import Demo, Recorder, cache_path, load_demo, save_demo
from .env import ARM_JOINTS, make_env

EE_MODE = "pd_ee_delta_pose"
# the Panda's pd_ee_delta_pose maps actions in [-1, 1] to +-0.1 m and +-0.1 rad per step
_POS_LIMIT, _ROT_LIMIT = 0.1, 0.1


def ee_delta_action(env, joint_target: np.ndarray) -> np.ndarray:
    """The normalised 6-d ``pd_ee_delta_pose`` arm action that moves the end effector from
    its current pose towards the pose forward kinematics gives for ``joint_target`` (7,)."""
    import torch
    from mani_skill.utils.geometry.rotation_conversions import (matrix_to_euler_angles,
                                                                quaternion_invert,
                                                                quaternion_multiply,
                                                                quaternion_to_matrix)
    arm = env.unwrapped.agent.controller.controllers["arm"]
    kin = arm.kinematics
    qpos = env.unwrapped.agent.robot.get_qpos()[0].cpu().numpy()
    q = qpos[kin.pmodel_active_joint_indices.cpu().numpy()].astype(np.float64)
    q[kin.pmodel_controlled_joint_indices.cpu().numpy()] = joint_target
    kin.pmodel.compute_forward_kinematics(q)
    target = kin.pmodel.get_link_pose(kin.end_link_idx)  # in the robot base frame
    current = arm.ee_pose_at_base
    dp = np.asarray(target.p) - current.p[0].cpu().numpy()
    tq = torch.as_tensor(np.asarray(target.q), dtype=current.q.dtype)[None]
    dq = quaternion_multiply(tq, quaternion_invert(current.q.cpu()))
    euler = matrix_to_euler_angles(quaternion_to_matrix(dq), "XYZ")[0].numpy()
    # seen on ManiSkill 3.0.1: a positive rotation action turns the end effector by the
    # negative of these Euler angles, so the sign is flipped; without the flip the replays
    # drift off the demos and fail (the simulator smoke test asserts they track the joints)
    return np.concatenate([np.clip(dp / _POS_LIMIT, -1, 1), np.clip(-euler / _ROT_LIMIT, -1, 1)])


def convert_demo(task: str, env, demo: Demo) -> Demo | None:
    """Replay ``demo`` (joint targets) with end-effector deltas in ``env`` (made with
    ``control_mode="pd_ee_delta_pose"``); None if the replay fails or misses an event."""
    rec = Recorder(env, task)
    rec.reset(seed=demo.seed)
    info = None
    for a in demo.actions:
        action = np.concatenate([ee_delta_action(env, a[:ARM_JOINTS]), a[ARM_JOINTS:]])
        _, _, _, _, info = rec.step(action.astype(np.float32))
    return rec.to_demo(demo.seed, info is not None and bool(info["success"][0]), EE_MODE)


def _convert_seeds(job) -> None:
    """Worker: convert and cache the given demos, a fresh env per demo (see ``_plan_seeds``)."""
    task, folder, demos = job
    for d in demos:
        env = make_env(task, control_mode=EE_MODE, max_episode_steps=10 ** 4)
        save_demo(cache_path(folder, d.seed), convert_demo(task, env, d))
        env.close()


def to_ee_delta(task: str, demos: list[Demo], *, cache_dir: str | Path = "demos", workers: int = 1,
                progress: bool = True) -> list[Demo]:
    """End-effector-delta versions of ``demos`` (the ones whose replay succeeds), cached
    per seed under ``cache_dir/<task>-pd_ee_delta_pose``."""
    folder = Path(cache_dir) / f"{task}-{EE_MODE}"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [d for d in demos if not cache_path(folder, d.seed).exists()]
    if todo:
        chunk = math.ceil(len(todo) / workers)
        jobs = [(task, str(folder), todo[i:i + chunk]) for i in range(0, len(todo), chunk)]
        if progress:
            print(f"converting {len(todo)} {task} demos to {EE_MODE} ({len(jobs)} processes)")
        map_jobs(_convert_seeds, jobs)
    out = [load_demo(cache_path(folder, d.seed)) for d in tqdm(demos, desc="ee demos", disable=not progress)]
    return [d for d in out if d is not None]

