"""ManiSkill MaxMI integration: demos, key-state discovery, key-state-guided BC.

Needs the ``maniskill`` extra: ``pip install "infoatlas-loss[maniskill]"``.  Importing this
package is light; the simulator is imported when an env is made.
"""
from .common import Normalizer
from .demos import Demo, generate_demos, load_demos
from .env import TASKS, get_task, make_env
from .keystates import (KeyStateConfig, KeyStateLocator, KeyStateResult, MaxMIObjective,
                        discover_key_states, key_state_error, random_key_states)
from .policy import BCResult, evaluate, successes, train_bc

__all__ = ["BCResult", "Demo", "KeyStateConfig", "KeyStateLocator", "KeyStateResult", "MaxMIObjective",
           "Normalizer", "TASKS", "discover_key_states", "evaluate", "generate_demos", "get_task",
           "key_state_error", "load_demos", "make_env", "random_key_states", "successes", "train_bc"]
