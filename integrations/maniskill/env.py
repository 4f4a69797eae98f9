"""ManiSkill3 tasks with state observations on the CPU simulator, without a GPU or Vulkan.

Task registry (which motion-planning solver makes demos, which physical events to measure
key states against, the evaluation horizon), env creation, and the flat state vector.
Heavy imports (sapien, mani_skill) happen inside functions: ``pip install "infoatlas-loss[maniskill]"``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

INSTALL_HINT = ('ManiSkill is an optional extra: pip install "infoatlas-loss[maniskill]" '
                '(mani_skill==3.0.1, numpy<2)')


@dataclass(frozen=True)
class Task:
    env_id: str
    solver: str            # name in mani_skill.examples.motionplanning.panda.solutions
    events: tuple[str, ...]  # physical events, in temporal order, key states are scored against
    max_steps: int         # evaluation horizon (the scripted demos are longer than the defaults)


TASKS = {
    "PickCube": Task("PickCube-v1", "solvePickCube", ("grasp", "placed"), 120),
    "StackCube": Task("StackCube-v1", "solveStackCube", ("grasp", "stacked"), 160),
    "PegInsertionSide": Task("PegInsertionSide-v1", "solvePegInsertionSide",
                             ("grasp", "aligned", "inserted"), 220),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name]


class _NoRenderMaterial:
    """Stand-in for sapien's RenderMaterial: state-only simulation never renders, but SAPIEN
    builds colour materials while loading a scene and fails without a Vulkan device."""

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

    def __setattr__(self, name, value):
        pass


def _import_maniskill():
    try:
        import sapien
        import mani_skill.envs  # noqa: F401  (registers the tasks)
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    import importlib
    # physics is unchanged (bit-identical trajectories); only the renderer's materials go.
    # Modules that imported the class by name get the stand-in too.
    for name in ("sapien.render", "sapien.pysapien.render", "sapien.wrapper.urdf_loader",
                 "sapien.wrapper.renderer", "mani_skill.utils.building._mjcf_loader"):
        module = importlib.import_module(name)
        if hasattr(module, "RenderMaterial"):
            module.RenderMaterial = _NoRenderMaterial


CONTROL_MODES = ("pd_joint_pos", "pd_ee_delta_pose")
ARM_JOINTS = 7  # the Panda's arm joints: the flat state starts with them, joint actions too


def make_env(task: str, *, max_episode_steps: int | None = None, control_mode: str = "pd_joint_pos"):
    """A single CPU-simulated env with ``state_dict`` observations; ``control_mode``
    ``"pd_joint_pos"`` (the motion planner's) or ``"pd_ee_delta_pose"`` (end-effector deltas)."""
    if control_mode not in CONTROL_MODES:
        raise ValueError(f"control_mode must be one of {CONTROL_MODES}, got {control_mode!r}")
    _import_maniskill()
    import gymnasium as gym
    kwargs = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    return gym.make(get_task(task).env_id, obs_mode="state_dict", control_mode=control_mode,
                    render_backend="none", sim_backend="physx_cpu", **kwargs)


def flatten_obs(obs: dict) -> np.ndarray:
    """Nested state_dict (batch 1) -> flat float32 state vector (D,), in ManiSkill's key order."""
    from mani_skill.utils.common import flatten_state_dict
    return flatten_state_dict(obs, use_torch=True)[0].cpu().numpy().astype(np.float32)


def events_now(task: str, env, info: dict) -> dict[str, bool]:
    """Which physical events hold at the current step (read from the simulator state)."""
    u = env.unwrapped
    if task == "PickCube":
        return {"grasp": bool(info["is_grasped"][0]), "placed": bool(info["is_obj_placed"][0])}
    if task == "StackCube":
        return {"grasp": bool(info["is_cubeA_grasped"][0]),
                "stacked": bool(info["is_cubeA_on_cubeB"][0])}
    if task == "PegInsertionSide":
        head = np.asarray(info["peg_head_pos_at_hole"][0].cpu())  # peg head in the hole frame (m)
        radius = float(u.box_hole_radii[0])
        lined_up = abs(head[1]) < radius and abs(head[2]) < radius
        return {"grasp": bool(u.agent.is_grasping(u.peg)[0]),
                "aligned": bool(lined_up and head[0] < -0.015),
                "inserted": bool(info["success"][0])}
    raise ValueError(task)
