"""The reference, identity and fixture forward tests again, on the JAX backend.

Keras picks its backend once per process, so the backend-agnostic test files are
run by a child ``pytest`` with ``KERAS_BACKEND=jax``.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e  # subprocess runs: the e2e tier

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_FILES = ["tests/test_decoupled_conv_reference.py", "tests/test_decoupled_conv_identities.py",
              "tests/test_tf1_fixtures.py", "tests/test_attacks.py", "tests/test_accuracy.py"]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                    reason="jax is not installed (pip install 'jax[cpu]') so the JAX backend "
                           "cannot be tested")
def test_decoupled_conv_tests_pass_on_jax():
    env = dict(os.environ, KERAS_BACKEND="jax")
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
               *TEST_FILES]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"{' '.join(command)} (KERAS_BACKEND=jax) exited with {result.returncode}:\n{output}")
    assert " passed" in result.stdout, output  # something actually ran
