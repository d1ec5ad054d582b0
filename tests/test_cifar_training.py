"""The CIFAR-100 training scripts (``dcnet_cifar100/<variant>/train_resnet.py``) end to end.

Every run is a separate process on the synthetic data set (``--dataset synthetic``, offline)
with tiny networks: the five entry points, ``--help``, debiased and undebiased inference
accuracy, the log files of fresh and resumed runs, MirroredStrategy and multi-worker runs against
one device, a resume after SIGKILL, and the one-line errors for bad input.  Expectations come
from SPEC.md sections 4-6 and from the scripts' own contracts (flags, files, messages), never
from an earlier output of the library.

Distributed equivalence is checked in float64 (tests/cifar_training_worker.py sets Keras's
float type before training): in float32 the gradients are ill-conditioned enough that merely
reordering the batch on ONE device moves them by up to ~1e-3 of their magnitude (linear_cos),
and Adam's normalised steps carry that into every weight, so two exact implementations drift
apart by more than 1e-4 after two or three updates.  In float64 one device and two replicas
agree to ~1e-14 after ten updates, so the comparison below is a sharp test of the distribution
logic (global batch statistics, gradient and moving-average aggregation).
"""

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

pytestmark = pytest.mark.e2e  # subprocess runs: the e2e tier

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(REPO, "tests", "cifar_training_worker.py")
VARIANTS = ("tanh_cos", "ball_cos", "seg_cos", "linear_cos", "linear_sqcos_wo_bn")

TRAIN_LINE = re.compile(r"^====iteration_(\d+): fit=(-?\d+\.\d{4}), reg=(-?\d+\.\d{4}), "
                        r"orth=(-?\d+\.\d{4}), acc=(\d+\.\d{4})$")
TEST_LINE = re.compile(r"^\+\+\+\+iteration_(\d+): test acc=(\d+\.\d{4})$")

TINY = ["--dataset", "synthetic", "--widths", "4", "8", "16", "--units_per_stage", "1",
        "--no-progress"]


def entry(variant):
    return os.path.join(REPO, "dcnet_cifar100", variant, "train_resnet.py")


def environment(cpu_only=False, tf_config=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("TF_CONFIG", None)
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    if cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    return env


def run_script(variant, args, cwd, timeout=300, env=None):
    """``python <repo>/dcnet_cifar100/<variant>/train_resnet.py ARGS`` in ``cwd``."""
    return subprocess.run([sys.executable, entry(variant)] + [str(a) for a in args], cwd=cwd,
                          env=env or environment(), capture_output=True, text=True,
                          timeout=timeout)


def readable(text, limit=5000):
    """The end of a process's output without TensorFlow's C++ log lines."""
    lines = [line for line in text.splitlines()
             if not re.match(r"^(?:[IWE]\d{4} |WARNING: All log messages|To enable the following)",
                             line)]
    return "\n".join(lines)[-limit:]


def check_ok(result):
    assert result.returncode == 0, (
        f"exit code {result.returncode}\nstdout:\n{readable(result.stdout, 3000)}\n"
        f"stderr:\n{readable(result.stderr)}")


def dirs(folder):
    return ["--model_dir", folder / "model", "--log_dir", folder / "log"]


def read_lines(path):
    with open(path) as f:
        return f.read().splitlines()


def parse_train_log(path):
    rows = []
    for line in read_lines(path):
        match = TRAIN_LINE.match(line)
        assert match, f"{path}: line does not have the original's format: {line!r}"
        rows.append((int(match.group(1)),) + tuple(float(g) for g in match.groups()[1:]))
    return rows


def parse_test_log(path):
    rows = []
    for line in read_lines(path):
        match = TEST_LINE.match(line)
        assert match, f"{path}: line does not have the original's format: {line!r}"
        rows.append((int(match.group(1)), float(match.group(2))))
    return rows


def load_keras_weights(path):
    """Every weight of a saved ``.keras`` model, in order (loaded in this process)."""
    import keras

    import dcnet_keras.models  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(path, compile=False)
    return model, [np.asarray(w) for w in model.get_weights()]


def latest_checkpoint_number(model_dir):
    state = model_dir / "checkpoints" / "checkpoint"
    if not state.exists():
        return None
    match = re.search(r'model_checkpoint_path: "ckpt-(\d+)"', state.read_text())
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------------------
# 1. The five entry points


ENTRY_ARGS = ["--dataset", "synthetic", "--max_steps", "60", "--widths", "8", "16", "32",
              "--units_per_stage", "1", "--base_lr", "1e-2", "--log_every", "5",
              "--eval_every", "30", "--checkpoint_every", "30", "--seed", "0", "--no-progress"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_entry_point_trains_logs_and_exports(variant, tmp_path):
    result = run_script(variant, ENTRY_ARGS + dirs(tmp_path), cwd=tmp_path)
    check_ok(result)
    assert "final test accuracy after 60 iterations" in result.stdout

    log = tmp_path / "log"
    train = parse_train_log(log / "log_train.txt")
    assert [row[0] for row in train] == list(range(5, 60, 5))
    tests = parse_test_log(log / "log_test.txt")
    assert [row[0] for row in tests] == [30, 59]
    for _, fit, reg, orth, acc in train:
        assert 0.0 < fit < 10.0 and 0.0 <= reg and 0.0 <= orth and 0.0 <= acc <= 1.0
    assert any(name.startswith("events.out.tfevents")
               for name in os.listdir(log / "tensorboard"))

    model_dir = tmp_path / "model"
    assert (model_dir / f"{variant}.keras").is_file()
    assert (model_dir / "saved_model" / "1" / "saved_model.pb").is_file()
    for number in (30, 59):
        assert (model_dir / "checkpoints" / f"ckpt-{number}.index").is_file()
    assert latest_checkpoint_number(model_dir) == 59

    # Training-batch accuracy rises and the fit loss falls (lr 1e-2 on the learnable set).
    fits = np.array([row[1] for row in train])
    accs = np.array([row[4] for row in train])
    assert accs[-3:].mean() >= accs[:3].mean() + 0.04, accs
    assert fits[-3:].mean() <= fits[:3].mean() - 0.3, fits

    # The exported .keras model reproduces the logged final test accuracy (inference mode,
    # moving averages, the whole synthetic test set).
    from dcnet_keras.data.synthetic import synthetic_cifar

    model, _ = load_keras_weights(model_dir / f"{variant}.keras")
    _, _, test_images, test_labels = synthetic_cifar()
    logits = model.predict(test_images.astype(np.float32), batch_size=100, verbose=0)
    accuracy = float(np.mean(np.argmax(logits, axis=1) == test_labels))
    assert abs(accuracy - tests[-1][1]) <= 0.002, (accuracy, tests[-1])


# --------------------------------------------------------------------------------------
# 2. --help


HELP_DEFAULTS = {
    "--base_lr": "0.001", "--batch_size": "128", "--max_steps": "42500",
    "--eval_every": "500", "--log_every": "100", "--checkpoint_every": "10000",
    "--data_dir": "None", "--dataset": "auto", "--model_dir": "None", "--log_dir": "None",
    "--strategy": "auto", "--seed": "0", "--deterministic": "False",
    "--widths": "[96, 192, 384]", "--units_per_stage": "5", "--resume": "True",
    "--debias_moving_averages": "False",
}


def help_blocks(text):
    """``{option string: help text with whitespace collapsed}`` from argparse's --help."""
    blocks, current = {}, None
    for line in text.splitlines():
        match = re.match(r"^  (-\S.*?)(?:\s{2,}(.*))?$", line)
        if match:
            current = [" ".join((match.group(2) or "").split())]
            for option in re.findall(r"(--?[\w-]+)", match.group(1).split("  ")[0]):
                blocks[option] = current
        elif current is not None and line.startswith("   "):
            current.append(" ".join(line.split()))
        elif not line.strip():
            current = None
    return {k: " ".join(v).strip() for k, v in blocks.items()}


def test_help_lists_every_flag_with_its_default(tmp_path):
    env = environment()
    env["COLUMNS"] = "100"
    result = run_script("ball_cos", ["--help"], cwd=tmp_path, env=env, timeout=120)
    check_ok(result)
    blocks = help_blocks(result.stdout)
    for flag, default in HELP_DEFAULTS.items():
        assert flag in blocks, f"{flag} missing from --help:\n{result.stdout}"
        shown = re.findall(r"\(default: ([^()]*)\)", blocks[flag])
        assert shown and shown[-1] == default, (flag, blocks[flag])
    assert "--no-resume" in blocks
    assert "synthetic" in blocks["--dataset"] and "multiworker" in blocks["--strategy"]
    assert not os.listdir(tmp_path)  # --help writes nothing


# --------------------------------------------------------------------------------------
# 3. Inference-mode accuracy with and without debiased moving averages


def test_debiased_moving_averages_give_useful_test_accuracy_early(tmp_path):
    args = ["--dataset", "synthetic", "--max_steps", "80", "--widths", "8", "16", "32",
            "--units_per_stage", "1", "--base_lr", "1e-2", "--log_every", "20",
            "--eval_every", "1000", "--checkpoint_every", "1000", "--no_export",
            "--no-progress", "--debias_moving_averages"]
    result = run_script("tanh_cos", args + dirs(tmp_path), cwd=tmp_path)
    check_ok(result)
    tests = parse_test_log(tmp_path / "log" / "log_test.txt")
    assert [row[0] for row in tests] == [79]
    assert tests[0][1] >= 0.08, f"test accuracy {tests[0][1]} is not well above chance (0.01)"


@pytest.mark.slow
def test_undebiased_run_reaches_useful_test_accuracy_after_2000_steps(tmp_path):
    args = ["--dataset", "synthetic", "--max_steps", "2000", "--widths", "8", "16", "32",
            "--units_per_stage", "1", "--log_every", "100", "--eval_every", "1000",
            "--checkpoint_every", "1000", "--no_export", "--no-progress"]
    result = run_script("tanh_cos", args + dirs(tmp_path), cwd=tmp_path, timeout=3000)
    check_ok(result)
    tests = parse_test_log(tmp_path / "log" / "log_test.txt")
    assert [row[0] for row in tests] == [1000, 1999]
    assert tests[-1][1] >= 0.2, f"test accuracy {tests[-1][1]} is not well above chance (0.01)"


# --------------------------------------------------------------------------------------
# 4. Log files of fresh and resumed runs


LOG_ARGS = TINY + ["--batch_size", "32", "--log_every", "5", "--eval_every", "10",
                   "--checkpoint_every", "10", "--no_export", "--seed", "1"]
FAKE_TRAIN = "====iteration_%d: fit=99.0000, reg=99.0000, orth=99.0000, acc=0.9999\n"
FAKE_TEST = "++++iteration_%d: test acc=0.9999\n"


def test_fresh_run_truncates_logs_and_resumed_run_drops_later_lines(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    (log / "log_train.txt").write_text("stale\n" + FAKE_TRAIN % 3 + FAKE_TRAIN % 500)
    (log / "log_test.txt").write_text(FAKE_TEST % 2 + "stale\n")

    first = run_script("tanh_cos", LOG_ARGS + ["--max_steps", "20"] + dirs(tmp_path),
                       cwd=tmp_path)
    check_ok(first)
    train = parse_train_log(log / "log_train.txt")  # no stale line survives a fresh run
    assert [row[0] for row in train] == [5, 10, 15]
    assert all(row[1] != 99.0 for row in train)
    assert [row[0] for row in parse_test_log(log / "log_test.txt")] == [10, 19]
    kept_train = read_lines(log / "log_train.txt")
    kept_test = read_lines(log / "log_test.txt")
    assert latest_checkpoint_number(tmp_path / "model") == 19

    # Lines about iterations after the restored one (19) must go; the rest stay as they are.
    with open(log / "log_train.txt", "a") as f:
        f.write(FAKE_TRAIN % 25 + FAKE_TRAIN % 37)
    with open(log / "log_test.txt", "a") as f:
        f.write(FAKE_TEST % 20 + FAKE_TEST % 25)

    second = run_script("tanh_cos", LOG_ARGS + ["--max_steps", "40"] + dirs(tmp_path),
                        cwd=tmp_path)
    check_ok(second)
    assert "resuming at iteration 20" in second.stdout
    train_lines = read_lines(log / "log_train.txt")
    test_lines = read_lines(log / "log_test.txt")
    assert train_lines[:3] == kept_train and test_lines[:2] == kept_test
    train = parse_train_log(log / "log_train.txt")
    assert [row[0] for row in train] == [5, 10, 15, 20, 25, 30, 35]
    assert all(row[1] != 99.0 for row in train)
    tests = parse_test_log(log / "log_test.txt")
    assert [row[0] for row in tests] == [10, 19, 20, 30, 39]
    assert all(acc != 0.9999 for _, acc in tests)

    # --no-resume starts afresh although checkpoints exist: both logs truncated again.
    third = run_script("tanh_cos", LOG_ARGS + ["--max_steps", "10", "--no-resume"]
                       + dirs(tmp_path), cwd=tmp_path)
    check_ok(third)
    assert "resuming" not in third.stdout
    assert [row[0] for row in parse_train_log(log / "log_train.txt")] == [5]
    assert [row[0] for row in parse_test_log(log / "log_test.txt")] == [9]


# --------------------------------------------------------------------------------------
# 5 and 7. MirroredStrategy and MultiWorkerMirroredStrategy against one device (float64)


DIST_ARGS = TINY + ["--max_steps", "10", "--batch_size", "32", "--log_every", "5",
                    "--eval_every", "5", "--checkpoint_every", "1000", "--deterministic",
                    "--no_export", "--seed", "3"]


def run_worker(out, variant, train_args, cwd, worker_args=(), env=None, timeout=300):
    command = [sys.executable, WORKER, str(out), variant, "--floatx", "float64",
               *worker_args, "--", *[str(a) for a in train_args]]
    return subprocess.run(command, cwd=cwd, env=env or environment(cpu_only=True),
                          capture_output=True, text=True, timeout=timeout)


def load_run(path):
    data = np.load(path)
    weights = {k[2:]: data[k] for k in data.files if k.startswith("w/")}
    replicas = {}
    for k in data.files:
        if k.startswith("r/"):
            name, replica = k[2:].rsplit("/", 1)
            replicas.setdefault(name, {})[int(replica)] = data[k]
    return weights, replicas, json.loads(str(data["meta"]))


def assert_same_weights(got, want, rtol=1e-8):
    """Each array within ``rtol`` of its largest magnitude (float64 runs: ~1e-14 observed)."""
    assert sorted(got) == sorted(want)
    assert any("moving_mean" in k for k in want) and any("moving_variance" in k for k in want)
    for name in sorted(want):
        a, b = got[name], want[name]
        assert a.shape == b.shape and a.dtype == np.float64, (name, a.shape, b.shape, a.dtype)
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)
        error = float(np.max(np.abs(a - b))) if b.size else 0.0
        assert error <= rtol * scale, \
            f"{name}: differs by {error:.3g} (largest |value| {scale:.3g})"


@pytest.fixture(scope="module")
def one_device_reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one_device")
    result = run_worker(folder / "weights.npz", "tanh_cos",
                        DIST_ARGS + ["--strategy", "one_device"] + dirs(folder), cwd=folder)
    check_ok(result)
    weights, replicas, meta = load_run(folder / "weights.npz")
    assert meta["replicas"] == 1
    # The run changed the weights: every BN beta moved away from its zero start.
    assert all(np.any(v != 0) for k, v in weights.items() if k.endswith("/beta"))
    return weights, meta


def test_mirrored_two_replicas_equal_one_device(one_device_reference, tmp_path):
    result = run_worker(tmp_path / "weights.npz", "tanh_cos",
                        DIST_ARGS + ["--strategy", "mirrored"] + dirs(tmp_path), cwd=tmp_path,
                        worker_args=["--logical_cpus", "2"])
    check_ok(result)
    assert "2 replica(s)" in result.stdout
    weights, replicas, meta = load_run(tmp_path / "weights.npz")
    assert meta["replicas"] == 2 and meta["strategy"] == "MirroredStrategy", meta
    assert meta["variable_classes"] == ["MirroredVariable"], meta
    reference, reference_meta = one_device_reference
    assert_same_weights(weights, reference)
    assert abs(meta["test_accuracy"] - reference_meta["test_accuracy"]) <= 0.001
    # Every replica holds the very same value of every variable.
    assert sorted(replicas) == sorted(weights)
    for name, copies in replicas.items():
        assert sorted(copies) == [0, 1], name
        assert np.array_equal(copies[0], copies[1]), f"{name}: replicas differ"
        assert np.array_equal(copies[0], weights[name]), name


def free_ports(count):
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multiworker_two_local_workers_equal_one_device(one_device_reference, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes, outputs = [], []
    try:
        for index in range(2):
            folder = tmp_path / f"worker{index}"
            folder.mkdir()
            out = open(folder / "output.txt", "w")
            outputs.append(out)
            env = environment(cpu_only=True,
                              tf_config={"cluster": cluster,
                                         "task": {"type": "worker", "index": index}})
            command = [sys.executable, WORKER, str(folder / "weights.npz"), "tanh_cos",
                       "--floatx", "float64", "--",
                       *[str(a) for a in DIST_ARGS + ["--strategy", "multiworker"]
                         + dirs(tmp_path / "shared")]]
            processes.append(subprocess.Popen(command, cwd=folder, env=env, stdout=out,
                                              stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 300  # a hung collective must not hang the suite
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for out in outputs:
            out.close()
    texts = [(tmp_path / f"worker{i}" / "output.txt").read_text() for i in range(2)]
    for index, process in enumerate(processes):
        assert process.returncode == 0, f"worker {index} failed:\n{readable(texts[index])}"
    chief, chief_replicas, meta = load_run(tmp_path / "worker0" / "weights.npz")
    other, _, other_meta = load_run(tmp_path / "worker1" / "weights.npz")
    assert meta["replicas"] == 2 and other_meta["replicas"] == 2, (meta, other_meta)
    reference, reference_meta = one_device_reference
    assert_same_weights(chief, reference)
    for name in chief:  # both workers end with the same model
        assert np.array_equal(chief[name], other[name]), name
    assert abs(meta["test_accuracy"] - reference_meta["test_accuracy"]) <= 0.001
    # Only the chief writes the logs; the other worker checkpoints to a scratch folder.
    assert [row[0] for row in parse_train_log(tmp_path / "shared" / "log" / "log_train.txt")] \
        == [5]
    assert latest_checkpoint_number(tmp_path / "shared" / "model") == 9
    assert latest_checkpoint_number(tmp_path / "shared" / "model" / "worker_1") == 9


# --------------------------------------------------------------------------------------
# 6. SIGKILL, then resume: exactly the weights of an uninterrupted run


KILL_ARGS = TINY + ["--max_steps", "120", "--batch_size", "32", "--log_every", "5",
                    "--eval_every", "1000", "--checkpoint_every", "5", "--deterministic",
                    "--seed", "5"]


def test_resume_after_sigkill_ends_with_the_uninterrupted_weights(tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    whole.mkdir()
    broken.mkdir()
    check_ok(run_script("tanh_cos", KILL_ARGS + dirs(whole), cwd=whole))

    with open(broken / "first_attempt.txt", "w") as out:
        process = subprocess.Popen([sys.executable, entry("tanh_cos")]
                                   + [str(a) for a in KILL_ARGS + dirs(broken)],
                                   cwd=broken, env=environment(), stdout=out,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240
            while latest_checkpoint_number(broken / "model") is None:
                assert process.poll() is None, readable(
                    (broken / "first_attempt.txt").read_text())
                assert time.monotonic() < deadline, "no checkpoint appeared"
                time.sleep(0.02)
            time.sleep(random.Random(20240601).uniform(0.0, 2.5))
            assert process.poll() is None, "the run ended before the kill"
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == -signal.SIGKILL
    interrupted_at = latest_checkpoint_number(broken / "model")
    assert interrupted_at is not None and interrupted_at < 119, interrupted_at
    assert not (broken / "model" / "tanh_cos.keras").exists()

    again = run_script("tanh_cos", KILL_ARGS + dirs(broken), cwd=broken)
    check_ok(again)
    assert f"resuming at iteration {interrupted_at + 1}" in again.stdout

    _, want = load_keras_weights(whole / "model" / "tanh_cos.keras")
    _, got = load_keras_weights(broken / "model" / "tanh_cos.keras")
    assert len(got) == len(want) > 0
    for index, (a, b) in enumerate(zip(got, want)):
        assert np.array_equal(a, b), f"weight {index} differs by {np.max(np.abs(a - b))}"
    # The logs also end as the uninterrupted run's (lines after the checkpoint replaced).
    for name in ("log_train.txt", "log_test.txt"):
        assert read_lines(broken / "log" / name) == read_lines(whole / "log" / name), name


# --------------------------------------------------------------------------------------
# 8. Bad input ends with a one-line message


def check_error(result, *names):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:"), result.stderr[-3000:]
    for name in names:
        assert name in last, (name, last)
    return last


def binary_records(count, fine=5):
    records = np.zeros((count, 3074), np.uint8)
    records[:, 0] = 3
    records[:, 1] = fine
    records[:, 2:] = np.arange(3072, dtype=np.uint64) % 251
    return records


def test_missing_data_dir_is_a_one_line_error(tmp_path):
    missing = tmp_path / "no_such_cifar"
    result = run_script("seg_cos", TINY[2:] + ["--data_dir", missing] + dirs(tmp_path),
                        cwd=tmp_path, timeout=120)
    check_error(result, str(missing))


def test_train_bin_of_wrong_size_is_a_one_line_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    binary_records(3).tofile(data / "test.bin")
    raw = np.concatenate([binary_records(2).ravel(), np.zeros(1000, np.uint8)])
    raw.tofile(data / "train.bin")
    result = run_script("linear_cos", TINY[2:] + ["--data_dir", data] + dirs(tmp_path),
                        cwd=tmp_path, timeout=120)
    check_error(result, str(data / "train.bin"), "3074", str(raw.size))


def test_fine_label_100_is_a_one_line_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    binary_records(3).tofile(data / "test.bin")
    records = binary_records(4)
    records[2, 1] = 100
    records.tofile(data / "train.bin")
    result = run_script("tanh_cos", TINY[2:] + ["--dataset", "binary", "--data_dir", data]
                        + dirs(tmp_path), cwd=tmp_path, timeout=120)
    last = check_error(result, str(data / "train.bin"), "100")
    assert "record 2" in last


def test_unknown_variant_is_a_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c",
         "from dcnet_keras.training.cifar import main; main('tanh_sine', '.', [])"],
        cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=120)
    check_error(result, "tanh_sine")
    assert not os.listdir(tmp_path)


def test_mirrored_adversarial_training_keeps_the_replicas_identical(tmp_path):
    """Adversarial training under MirroredStrategy: each replica mixes its own slice (half
    FGSM), the update is one, and every replica ends with the same finite weights."""
    result = run_worker(tmp_path / "weights.npz", "tanh_cos",
                        DIST_ARGS + ["--strategy", "mirrored", "--adversarial", "fgsm"]
                        + dirs(tmp_path), cwd=tmp_path, worker_args=["--logical_cpus", "2"])
    check_ok(result)
    weights, replicas, meta = load_run(tmp_path / "weights.npz")
    assert meta["replicas"] == 2 and meta["strategy"] == "MirroredStrategy", meta
    assert all(np.all(np.isfinite(v)) for v in weights.values())
    for name, copies in replicas.items():
        assert np.array_equal(copies[0], copies[1]), f"{name}: replicas differ"
    record = json.loads((tmp_path / "model" / "model_spec.json").read_text())
    assert record["adversarial"] == "fgsm" and record["adversarial_epsilon"] == 8.0
