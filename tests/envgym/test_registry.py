import subprocess
import sys

import gymnasium as gym

import envgym
from envgym.registry import ENTRIES


def test_every_entry_is_registered_and_makes() -> None:
    for entry in ENTRIES:
        assert entry.id in gym.registry
    env = gym.make("envgym/Puzzle-v0")
    obs, info = env.reset(seed=0)
    assert isinstance(obs, str) and info["task"]["env"] == "envgym/Puzzle-v0@2"


def test_make_with_module_prefix_in_a_fresh_interpreter() -> None:
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('envgym:envgym/Puzzle-v0')\n"
        "obs, info = env.reset(seed=3)\n"
        "heavy = [m for m in ('torch', 'transformers', 'docker') if m in sys.modules]\n"
        "print('OK', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "OK []" in out


def test_import_envgym_stays_light() -> None:
    code = "import sys, envgym, envgym.agents, envgym.sandboxes; print(sorted(m for m in ('torch', 'transformers', 'docker') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert envgym.__version__
