"""The model benchmark (``benchmarks/bench_models.py``) and its plain Keras reference.

* ``plain_keras_network``: the same weight shapes as our ``baseline`` of each network
  (an exact identity: the same graph of convolutions and batch norms) and a weight-decay
  total equal to ``5e-4 * sum(w^2) / 2`` over its filters, gammas and betas, computed here
  in NumPy.
* the benchmark's flags: bad values are one argparse line naming the flag.
* ``e2e``: the script at tiny size, on both networks (the ResNet with ``--memory``): every row
  present, every number positive and finite, each ratio column the quotient of the
  printed numbers, images/s = batch / train step.
"""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import keras

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO_ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_models  # noqa: E402
from plain_keras_network import build_plain_network  # noqa: E402

from dcnet_keras.models import build_model  # noqa: E402

WEIGHT_DECAY = 5e-4
TINY_FLAGS = ["--widths", "4", "8", "8", "--batch", "4", "--repeats", "1", "--warmup", "1",
              "--variants", "baseline", "tanh_cos"]
TINY_OPTIONS = {"cifar_resnet32": dict(widths=(4, 8, 8), units_per_stage=1),
                "cnn9": dict(widths=(4, 8, 8), fc_width=8, relu=True)}
CLASSES = {"cifar_resnet32": 100, "cnn9": 10}


def weight_shapes(model):
    """The sorted multiset of the model's weight shapes (trainable and moving averages)."""
    return sorted(tuple(w.shape) for w in model.weights)


@pytest.mark.parametrize("network", ["cifar_resnet32", "cnn9"])
def test_plain_network_has_the_shapes_of_our_baseline(network):
    options = TINY_OPTIONS[network]
    plain = build_plain_network(network, CLASSES[network], **options)
    ours = build_model(network, variant="baseline", num_classes=CLASSES[network], **options)
    assert weight_shapes(plain) == weight_shapes(ours)
    assert plain.output_shape == ours.output_shape == (None, CLASSES[network])
    assert len(plain.losses) == len(ours.losses)  # one decay term per filter, gamma, beta


def test_plain_network_weight_decay_is_tf1_l2():
    plain = build_plain_network("cnn9", 10, **TINY_OPTIONS["cnn9"])
    decayed = [w for w in plain.trainable_weights if w.name in ("kernel", "gamma", "beta")]
    expected = sum(WEIGHT_DECAY * np.sum(np.square(keras.ops.convert_to_numpy(w))) / 2
                   for w in decayed)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in plain.losses)
    assert len(decayed) == len(plain.trainable_weights)  # Conv2D(use_bias=False): no bias
    assert total == pytest.approx(expected, rel=1e-5)


def test_plain_network_without_batch_norm_has_none():
    plain = build_plain_network("cifar_resnet32", 100, batch_norm=False,
                                **TINY_OPTIONS["cifar_resnet32"])
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in plain.layers)


def test_unknown_network_for_plain_reference_is_one_line():
    with pytest.raises(ValueError, match=r"^network: no plain Keras reference for 'imagenet"):
        build_plain_network("imagenet_resnet18", 1000)


@pytest.mark.parametrize("argv, flag, value", [
    (["--variants", "baseline", "bogus_cos"], "--variants", "bogus_cos"),
    (["--batch", "0"], "--batch", "0"),
    (["--widths", "4", "-8", "8"], "--widths", "-8"),
    (["--precision", "float16"], "--precision", "float16"),
    (["--warmup", "-1"], "--warmup", "-1"),
])
def test_bad_flags_are_one_argparse_line(argv, flag, value, capsys):
    with pytest.raises(SystemExit) as info:
        bench_models.parse_args(argv)
    assert info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in error and flag in error and value in error, error


def test_cnn9_variants_accept_preset_names():
    args = bench_models.parse_args(["--network", "cnn9", "--variants", "cnn9_ball_cos",
                                    "tanh_cos"])
    assert args.models == ["plain_keras", "baseline", "ball_cos", "tanh_cos"]
    assert bench_models.row_label("ball_cos", "cnn9") == "cnn9_ball_cos"
    assert bench_models.has_batch_norm("tanh_cos")
    assert not bench_models.has_batch_norm("linear_sqcos_wo_bn")  # its table row says "no"


def markdown_tables(text):
    """Each Markdown table of ``text`` as a list of ``{column: cell}`` rows."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif current:
            header, rows = current[0], current[2:]  # current[1] is the |---| rule
            tables.append([dict(zip(header, row)) for row in rows])
            current = []
    return tables


def assert_ratio(printed, numerator, denominator):
    """``printed`` (3 decimals) is ``numerator / denominator`` up to the rounding of all
    three printed numbers (the two operands to their last printed decimal, ``step``)."""
    value, num, den = float(printed), float(numerator), float(denominator)
    step = 10.0 ** -len(numerator.partition(".")[2]) if "." in numerator else 1.0
    quotient = num / den
    tolerance = 5e-4 + quotient * (0.5 * step / num + 0.5 * step / den) + 1e-12
    assert abs(value - quotient) <= tolerance, (printed, numerator, denominator)


def run_benchmark(network, extra):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    command = [sys.executable, str(BENCHMARKS / "bench_models.py"), "--network", network,
               *TINY_FLAGS, *extra]
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


# Each --memory model is a fresh process (~11 CPU-seconds with TensorFlow's import), so
# only the ResNet is measured that way; CNN-9 runs its three models in one process.
@pytest.mark.e2e
@pytest.mark.parametrize("network, extra, rows", [
    ("cifar_resnet32", ["--units_per_stage", "1", "--memory"],
     ["plain_keras", "baseline", "tanh_cos"]),
    ("cnn9", ["--host_reads"], ["plain_keras", "cnn9_baseline", "cnn9_tanh_cos"]),
])
def test_benchmark_tables(network, extra, rows):
    output = run_benchmark(network, extra)
    assert f"# {network}: widths [4, 8, 8]" in output
    assert "backend tensorflow" in output and "train step: dcnet_keras TrainStep" in output
    tables = markdown_tables(output)
    if "--host_reads" in extra:  # the last table: 10 steps read every step / once
        reads = tables.pop()
        assert [row["tanh_cos train steps"] for row in reads] == [
            "10 steps, loss read after every step", "10 steps, loss read once at the end"]
        for row in reads:
            assert float(row["per step ms"]) == pytest.approx(float(row["s"]) * 100, abs=0.06)
    assert len(tables) == (2 if "--memory" in extra else 1), output
    for table in tables:
        assert [row["model"] for row in table] == rows
        for row in table:
            numbers = [float(cell) for column, cell in row.items() if column not in
                       ("model", "BN")]
            assert all(math.isfinite(v) and v > 0 for v in numbers), row
    check_time_table(tables[0], batch=4)
    if "--memory" in extra:
        check_memory_table(tables[1])


def check_time_table(times, batch):
    """Each ratio is the quotient of the printed times; images/s is batch / train step."""
    plain, base = times[0], times[1]
    for row in times:
        assert row["BN"] == "yes"
        assert_ratio(row["train / baseline"], row["train step ms"], base["train step ms"])
        assert_ratio(row["train / plain"], row["train step ms"], plain["train step ms"])
        assert_ratio(row["inference / baseline"], row["inference ms"], base["inference ms"])
        assert_ratio(row["inference / plain"], row["inference ms"], plain["inference ms"])
        images_per_s = batch * 1000.0 / float(row["train step ms"])
        assert float(row["train images/s"]) == pytest.approx(images_per_s, abs=0.06, rel=1e-3)


def check_memory_table(memory):
    """Peak RSS of a process with Keras and TensorFlow loaded; ratios as printed."""
    plain_rss, base_rss = memory[0]["peak RSS MiB"], memory[1]["peak RSS MiB"]
    for row in memory:
        assert float(row["peak RSS MiB"]) > 100
        assert_ratio(row["RSS / baseline"], row["peak RSS MiB"], base_rss)
        assert_ratio(row["RSS / plain"], row["peak RSS MiB"], plain_rss)


def test_plain_network_logits_are_float32_under_mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        plain = build_plain_network("cifar_resnet32", 100, **TINY_OPTIONS["cifar_resnet32"])
    finally:
        keras.config.set_dtype_policy(previous)
    assert plain.get_layer("block1_unit0_relu").output.dtype == "bfloat16"
    assert plain.output.dtype == "float32"  # as our networks' score and logits layers
