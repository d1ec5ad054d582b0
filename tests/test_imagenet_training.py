"""``dcnet_imagenet/train_DCNet.py`` on small TFRecord shards of real JPEGs."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dcnet_keras.data.shard_writer import write_shards  # noqa: E402

pytestmark = pytest.mark.e2e  # subprocess runs: the e2e tier

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "dcnet_imagenet", "train_DCNet.py")
TRAIN_LINE = re.compile(r"^====iteration_(\d+): fit=\d+\.\d{4}, reg=\d+\.\d{4}, "
                        r"orth=\d+\.\d{4}, top1=(\d\.\d{4}), top5=(\d\.\d{4})$")
TEST_LINE = re.compile(r"^\+\+\+\+iteration_(\d+): top1=(\d\.\d{4}), top5=(\d\.\d{4})$")
SIZES = [(300, 217), (256, 256), (180, 400), (97, 128), (240, 320), (333, 250)]


def shards(folder, rng, train_labels=None, validation_labels=None, corrupt=None):
    def images(n):
        return [rng.integers(0, 256, SIZES[i % len(SIZES)] + (3,), dtype=np.uint8)
                for i in range(n)]

    train_labels = train_labels or [int(v) for v in rng.integers(1, 1001, 16)]
    validation_labels = validation_labels or [int(v) for v in rng.integers(1, 1001, 7)]
    train_images = images(len(train_labels))
    if corrupt is not None:
        train_images[corrupt] = b"\xff\xd8 not really a jpeg"
    write_shards(folder, "train", train_images, train_labels, num_shards=3)
    write_shards(folder, "validation", images(len(validation_labels)), validation_labels,
                 num_shards=2)


def train(data_dir, out, *extra, timeout=600):
    command = [sys.executable, SCRIPT, "--data_dir", str(data_dir), "--widths", "4", "4", "8",
               "8", "--batch_size", "4", "--max_steps", "7", "--log_every", "2",
               "--eval_every", "3", "--checkpoint_every", "3", "--shuffle_buffer", "16",
               "--model_dir", str(out / "model"), "--log_dir", str(out / "log"),
               "--no-progress", *extra]
    return subprocess.run(command, cwd=str(out), capture_output=True, text=True,
                          timeout=timeout)


def test_trains_on_original_shards_and_evaluates_top1_top5(tmp_path):
    shards(tmp_path / "data", np.random.default_rng(0))
    result = train(tmp_path / "data", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    train_lines = [TRAIN_LINE.match(l) for l in lines if l.startswith("====iteration")]
    test_lines = [TEST_LINE.match(l) for l in lines if l.startswith("++++")]
    assert all(train_lines) and [int(m.group(1)) for m in train_lines] == [2, 4, 6]
    # As the original ImageNet script: no block after the loop, so the last iteration (6, a
    # multiple of both intervals, like 700000) is tested and saved once.
    assert all(test_lines) and [int(m.group(1)) for m in test_lines] == [3, 6]
    for match in train_lines + test_lines:
        top1, top5 = float(match.group(2)), float(match.group(3))
        assert 0.0 <= top1 <= top5 <= 1.0
    # every validation image counted once: accuracies are multiples of 1/7
    for match in test_lines:
        for value in (float(match.group(2)), float(match.group(3))):
            assert abs(value * 7 - round(value * 7)) < 1e-3
    with open(tmp_path / "log" / "log_test.txt") as f:
        assert [TEST_LINE.match(l).group(1) for l in f.read().splitlines()] == ["3", "6"]
    assert os.path.exists(tmp_path / "model" / "imagenet.keras")
    assert sorted(n for n in os.listdir(tmp_path / "model" / "checkpoints")
                  if n.endswith(".index")) == ["ckpt-3.index", "ckpt-6.index"]

    resumed = train(tmp_path / "data", tmp_path, "--max_steps", "9")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at iteration 7" in resumed.stdout


@pytest.mark.parametrize("problem", ["label 0", "label 1001", "corrupt jpeg"])
def test_bad_record_is_a_one_line_error_naming_the_file(tmp_path, problem):
    rng = np.random.default_rng(1)
    labels = [int(v) for v in rng.integers(1, 1001, 16)]
    corrupt = None
    if problem.startswith("label"):
        labels[5] = int(problem.split()[1])
    else:
        corrupt = 5
    shards(tmp_path / "data", rng, train_labels=labels, corrupt=corrupt)
    result = train(tmp_path / "data", tmp_path, "--shuffle_buffer", "1")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "train-" in last and "Traceback" not in result.stderr
    assert "record" in last


def test_missing_shards_are_a_one_line_error(tmp_path):
    result = train(tmp_path / "nowhere", tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nowhere" in last and "Traceback" not in result.stderr
    (tmp_path / "only_train").mkdir()
    write_shards(tmp_path / "only_train", "train",
                 [np.zeros((40, 40, 3), np.uint8)], [1], num_shards=1)
    result = train(tmp_path / "only_train", tmp_path)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "validation-*" in last


def test_help_lists_the_flags():
    result = subprocess.run([sys.executable, SCRIPT, "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0
    for flag in ("--data_dir", "--max_steps", "--batch_size", "--base_lr", "--strategy",
                 "--widths", "--debias_moving_averages", "--eval_every", "--checkpoint_every"):
        assert flag in result.stdout
    assert "700001" in result.stdout and "(default: 40)" in result.stdout
