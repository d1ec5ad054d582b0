"""The backend-agnostic half of the project runs with TensorFlow absent (``KERAS_BACKEND=jax``).

A child Python gets a ``sitecustomize.py`` (on ``PYTHONPATH``) whose ``sys.meta_path``
finder raises ``ImportError`` for ``tensorflow``, ``tensorflow.*``, ``tf_keras`` and
``tensorflow_datasets`` before anything else is imported, and logs every attempt with
its importer and stack.  The child is this file run as a script (``--checks``); it imports
``dcnet_keras``, builds every preset at tiny size through ``build_model``, runs a
training-mode and an inference-mode forward of each, checks both forms of the loss
against a NumPy cross entropy written here, trains two ``train_on_batch`` steps,
round-trips a model through a ``.keras`` file and runs ``benchmarks/bench_models.py``
at tiny size; it prints one JSON line.  The test asserts the child succeeded, that no
TensorFlow module was ever imported, and that nothing but Keras's own optional probe
(``keras.src.utils.module_utils.LazyModule``) even tried to import one.
"""

import contextlib
import importlib.util
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.e2e  # a subprocess on another backend

REPO_ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("tensorflow", "tf_keras", "tensorflow_datasets")
IMPORT_LOG = "DCNET_BLOCKED_IMPORT_LOG"
REPORT_PREFIX = "WITHOUT_TF_REPORT "

#: Keras's ``LazyModule`` (``keras.src.utils.module_utils``) probes for TensorFlow where it
#: is optional (``tf.available`` while serialising, for ``.keras`` saving) and catches the
#: ImportError: the one importer allowed to try.
OPTIONAL_PROBE = os.path.join("keras", "src", "utils", "module_utils.py")

SITECUSTOMIZE = f'''"""Block TensorFlow in this interpreter (tests/test_without_tensorflow.py)."""
import json
import os
import sys
import traceback

BLOCKED = {BLOCKED!r}


def importer(stack):
    """The innermost frame outside the import machinery and this file: who imports."""
    for frame in reversed(stack):
        name = frame.filename
        if not (name.startswith("<frozen") or name == __file__
                or name.endswith(os.path.join("importlib", "__init__.py"))):
            return f"{{name}}:{{frame.lineno}}"
    return "?"


class BlockTensorFlow:
    """A meta-path finder: ``ImportError`` for the blocked top-level packages."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in BLOCKED:
            return None
        log = os.environ.get({IMPORT_LOG!r})
        if log:
            stack = traceback.extract_stack()
            with open(log, "a") as out:
                out.write(json.dumps({{"pid": os.getpid(), "name": name,
                                      "importer": importer(stack),
                                      "stack": "".join(traceback.format_list(stack[-20:]))}})
                          + "\\n")
        raise ImportError(f"{{name}} is blocked: this process must run without TensorFlow")


sys.meta_path.insert(0, BlockTensorFlow())
'''

TINY_SIZES = {"cifar_resnet32": dict(widths=(4, 8, 8), units_per_stage=1),
              "cnn9": dict(widths=(4, 8, 8), fc_width=8),
              "imagenet_resnet18": dict(widths=(2, 2, 2, 2))}


# --- the child: the checks run with TensorFlow blocked ---------------------------------------

def reference_cross_entropy(labels, logits):
    """``-sum_k t_k log(softmax_k + 1e-4)``, ``t = 0.99 onehot + 0.01 / K``, per example."""
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True) + 1e-4
    classes = logits.shape[1]
    targets = 0.99 * np.eye(classes)[labels] + 0.01 / classes
    return -(targets * np.log(probabilities)).sum(axis=1)


def sample(batch, shape, classes, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (batch, *shape)).astype(np.float32)
    return images, rng.integers(0, classes, (batch,)).astype(np.int32)


def check_forwards():
    """Every preset at tiny size: a training and an inference forward, finite logits."""
    import keras
    from dcnet_keras.models import build_model, get_network
    from dcnet_keras.presets import PRESETS

    built = []
    for name, preset in PRESETS.items():
        network = get_network(preset.network)
        model = build_model(name, **TINY_SIZES[preset.network])
        images, _ = sample(1 if preset.network == "imagenet_resnet18" else 2,
                           network.input_shape, preset.num_classes)
        for training in (True, False):
            logits = keras.ops.convert_to_numpy(model(images, training=training))
            assert logits.shape == (len(images), preset.num_classes), (name, logits.shape)
            assert np.isfinite(logits).all(), (name, training)
        built.append(name)
    return built


def check_losses():
    """Both forms of the loss against :func:`reference_cross_entropy`."""
    from dcnet_keras.losses import DCNetCrossEntropy, dcnet_cross_entropy

    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]], np.float32)
    labels = np.array([0, 2], np.int32)
    per_example = reference_cross_entropy(labels, logits)
    values = {"class": float(DCNetCrossEntropy()(labels, logits)),
              "function": float(dcnet_cross_entropy(labels, logits)),
              "weighted": float(DCNetCrossEntropy()(labels, logits, np.array([1.0, 0.0])))}
    expected = {"class": per_example.mean(), "function": per_example.mean(),
                "weighted": per_example[0] / 2}
    for form, value in values.items():
        assert math.isclose(value, expected[form], rel_tol=1e-5), (form, value, expected[form])
    return values


def check_training_and_saving(directory):
    """Two ``train_on_batch`` steps (finite loss, weights moved) and a ``.keras`` round trip
    that predicts the same logits."""
    import keras
    from dcnet_keras.losses import DCNetCrossEntropy
    from dcnet_keras.models import build_model
    from dcnet_keras.recipes import get_recipe

    model = build_model("tanh_cos", **TINY_SIZES["cifar_resnet32"])
    images, labels = sample(4, (32, 32, 3), 100)
    model.compile(optimizer=get_recipe("dcnet_cifar").make_optimizer(), loss=DCNetCrossEntropy())
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    losses = [float(model.train_on_batch(images, labels)) for _ in range(2)]
    assert all(math.isfinite(loss) for loss in losses), losses
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    path = os.path.join(directory, "tanh_cos.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    expected = keras.ops.convert_to_numpy(model(images, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images, training=False)),
                               expected, rtol=1e-5, atol=1e-5)
    return losses


def check_benchmark():
    """``bench_models.main`` at tiny size prints its three rows; ``--imagenet`` is refused."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import bench_models

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        bench_models.main(["--widths", "4", "8", "8", "--batch", "2", "--repeats", "1",
                           "--warmup", "1", "--units_per_stage", "1", "--variants", "baseline",
                           "tanh_cos", "--patch_norms"])
    text = output.getvalue()
    for row in ("| plain_keras |", "| baseline |", "| tanh_cos |", "| box (ours) |"):
        assert row in text, text
    assert "backend jax" in text and "keras Model.train_on_batch" in text, text
    with contextlib.redirect_stderr(io.StringIO()) as errors, pytest.raises(SystemExit):
        bench_models.main(["--imagenet"])
    assert "--imagenet: TensorFlow backend only" in errors.getvalue()
    return text


def run_checks(directory):
    import keras

    assert keras.backend.backend() == "jax", keras.backend.backend()
    import dcnet_keras  # noqa: F401

    report = {"presets": check_forwards(), "losses": check_losses(),
              "train_losses": check_training_and_saving(directory),
              "benchmark": check_benchmark()}
    report["imported"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    report["tensorflow_in_sys_modules"] = "tensorflow" in sys.modules
    print(REPORT_PREFIX + json.dumps(report), flush=True)


# --- the test: the child with TensorFlow blocked ---------------------------------------------

def blocked_environment(tmp_path, log):
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    python_path = os.pathsep.join([str(tmp_path), str(REPO_ROOT),
                                   os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=python_path,
                **{IMPORT_LOG: str(log)})


def read_attempts(log):
    """The blocker's log: one ``{pid, name, importer, stack}`` per blocked import."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line]


def test_the_blocker_blocks(tmp_path):
    log = tmp_path / "probe.log"
    env = blocked_environment(tmp_path, log)
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert probe.returncode != 0
    assert "tensorflow is blocked" in probe.stderr, probe.stderr
    (attempt,) = read_attempts(log)
    assert attempt["name"] == "tensorflow" and attempt["importer"].startswith("<string>")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                    reason="jax is not installed (pip install 'jax[cpu]')")
def test_runs_without_tensorflow(tmp_path):
    log = tmp_path / "attempts.log"
    env = blocked_environment(tmp_path, log)
    command = [sys.executable, str(Path(__file__).resolve()), "--checks", str(tmp_path)]
    child = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                           timeout=900)
    output = child.stdout + child.stderr
    attempts = read_attempts(log)
    assert child.returncode == 0, f"{' '.join(command)} (TensorFlow blocked):\n{output}"
    lines = [line for line in child.stdout.splitlines() if line.startswith(REPORT_PREFIX)]
    assert lines, output
    report = json.loads(lines[-1][len(REPORT_PREFIX):])
    assert report["tensorflow_in_sys_modules"] is False
    assert report["imported"] == []
    required = [a for a in attempts if not a["importer"].rpartition(":")[0].endswith(
        OPTIONAL_PROBE)]
    assert required == [], "tried to import TensorFlow:\n" + "\n".join(
        f"{a['name']} from {a['importer']}:\n{a['stack']}" for a in required)
    from dcnet_keras.presets import PRESETS

    assert sorted(report["presets"]) == sorted(PRESETS.names())


if __name__ == "__main__":
    if sys.argv[1:2] != ["--checks"] or len(sys.argv) != 3:
        raise SystemExit(f"usage: {sys.argv[0]} --checks DIRECTORY, received {sys.argv[1:]}")
    run_checks(sys.argv[2])
