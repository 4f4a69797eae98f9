"""ManiSkill MaxMI integration: demos, key-state discovery, key-state-guided BC.

Needs the ``maniskill`` extra: ``pip install "infoatlas-loss[maniskill]"``.  Importing this
package is light; the simulator is imported when an env is made.
"""
from .demos import Demo, generate_demos
from .env import TASKS, get_task, make_env
from .keystates import KeyStateLocator, discover_key_states, key_state_error, random_key_states
from .policy import evaluate, successes, train_bc

__all__ = ["Demo", "generate_demos", "TASKS", "get_task", "make_env", "KeyStateLocator",
           "discover_key_states", "key_state_error", "random_key_states", "evaluate", "successes",
           "train_bc"]
