"""`import envgym` (and `envgym.integrations`) must not import any trainer library."""

import subprocess
import sys


def test_importing_envgym_pulls_in_no_integration_library():
    code = (
        "import sys, envgym, envgym.integrations, gymnasium as gym; gym.make('envgym/GuessNumber-v0'); "
        "print(sorted(m for m in ('trl', 'verifiers', 'skyrl_gym', 'datasets') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
