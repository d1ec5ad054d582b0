"""Speed and memory of the 32x32 networks' variants against `baseline` and plain Keras.

Prints Markdown tables: per model, the train-step time (forward + backward +
one Adam update), training images/s (batch / train step), the inference time
(``model(x, training=False)``, compiled), and with ``--memory`` the peak memory,
each also as a ratio to our ``baseline`` (plain convolutions, same graph) and
to ``plain_keras``: the same network of stock ``keras.layers.Conv2D(use_bias=False)``
+ ``BatchNormalization`` + ReLU (:mod:`plain_keras_network`).

    python benchmarks/bench_models.py                       # CIFAR ResNet-32, full width, batch 128
    python benchmarks/bench_models.py --network cnn9        # CNN-9 (128, 192, 256)
    python benchmarks/bench_models.py --precision bfloat16 --jit --memory --rounds 2
    KERAS_BACKEND=jax python benchmarks/bench_models.py     # runs without TensorFlow installed
    python benchmarks/bench_models.py --patch_norms         # + box vs ones-filter patch norm
    python benchmarks/bench_models.py --imagenet            # the ImageNet network (TensorFlow)

Times are medians of ``--repeats`` timed calls after ``--warmup`` untimed ones.
The models run in the order plain_keras, baseline, the other variants, and
``--rounds`` times over (alternated); each number is the median over rounds.
With ``--memory`` every model runs in its own fresh process (this script with
a hidden flag), which reports its peak RSS and, on a GPU, the device's peak
bytes in use; without it all models run in this process.  The train step is the
project's ``TrainStep`` on TensorFlow and Keras's ``train_on_batch`` on other
backends (the header says which); compare ratios from one run only.
"""

import argparse
import datetime
import json
import math
import os
import statistics
import subprocess
import sys

import keras
import numpy as np

BENCHMARKS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCHMARKS_DIR))  # dcnet_keras without installing it
sys.path.insert(0, BENCHMARKS_DIR)  # its sibling modules, also when imported

import backend_timing as timing  # noqa: E402
from plain_keras_network import build_plain_network  # noqa: E402

from dcnet_keras import operators  # noqa: E402
from dcnet_keras.models import build_model, get_network  # noqa: E402
from dcnet_keras.presets import PRESETS  # noqa: E402
from dcnet_keras.recipes import get_recipe  # noqa: E402
from dcnet_keras.variants import parse_variant  # noqa: E402

#: the variants timed by default, per network (CNN-9's are the ``cnn9_*`` presets).
DEFAULT_VARIANTS = {
    "cifar_resnet32": ("baseline", "tanh_cos", "ball_cos", "seg_cos", "linear_cos",
                       "linear_sqcos_wo_bn"),
    "cnn9": ("baseline", "sphere_cos", "ball_cos", "tanh_cos"),
}
PLAIN = "plain_keras"
BASELINE = "baseline"
#: ``--precision`` -> the Keras dtype policy set before every model is built.
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
#: prefix of the one line a ``--_measure`` child prints: this, then a JSON object.
RESULT_PREFIX = "BENCH_RESULT "
MIB = 2.0 ** 20


# --- one model ------------------------------------------------------------------------------

#: the size options each network is built with (the plain reference takes the same).
SIZE_OPTIONS = {"cifar_resnet32": ("widths", "units_per_stage"),
                "cnn9": ("widths", "fc_width", "relu")}


def network_options(args):
    """The network's size options: its defaults with ``--widths`` (and
    ``--units_per_stage`` for the ResNet)."""
    defaults = get_network(args.network).options
    options = {name: defaults[name] for name in SIZE_OPTIONS[args.network]}
    options["widths"] = tuple(args.widths)
    if args.network == "cifar_resnet32":
        options["units_per_stage"] = args.units_per_stage
    return options


def build_benchmark_model(key, args):
    """``plain_keras`` (with batch norm) or our network with the variant ``key``."""
    network = get_network(args.network)
    if key == PLAIN:
        return build_plain_network(args.network, network.num_classes, **network_options(args))
    return build_model(args.network, variant=key, num_classes=network.num_classes,
                       **network_options(args))


def sample_batch(batch, num_classes):
    """Images ``[batch, 32, 32, 3]`` of integers 0..255 (float32) and labels ``[batch]``."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, num_classes, (batch,)).astype(np.int32)
    return keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)


def measure(key, args):
    """``{"train_s", "infer_s", "loss", ...}`` of one model; with ``--memory`` also
    ``peak_rss_bytes`` and ``device_peak_bytes`` (``None`` without an accelerator)."""
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(POLICIES[args.precision])
    keras.utils.set_random_seed(0)
    network = get_network(args.network)
    model = build_benchmark_model(key, args)
    images, labels = sample_batch(args.batch, network.num_classes)
    optimizer = get_recipe(network.default_recipe).make_optimizer()
    train = timing.make_train_step(model, optimizer, args.jit)
    infer = timing.make_inference(model, args.jit)
    losses = []
    train_s = timing.median_seconds(lambda: losses.append(train(images, labels)), args.warmup,
                                    args.repeats)
    infer_s = timing.median_seconds(lambda: infer(images), args.warmup, args.repeats)
    result = {"train_s": train_s, "infer_s": infer_s, "loss": losses[-1],
              "device": timing.device_description(), "backend": timing.backend_version()}
    if args.memory:
        result["peak_rss_bytes"] = timing.peak_rss_bytes()
        result["device_peak_bytes"] = timing.device_peak_bytes()
    return result


def measure_in_child(key, args):
    """:func:`measure` of ``key`` in a fresh process (this script, ``--_measure key``)."""
    command = [sys.executable, os.path.abspath(__file__), *args.argv, "--_measure", key]
    child = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in child.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if child.returncode != 0 or not lines:
        tail = "\n".join((child.stdout + child.stderr).splitlines()[-30:])
        raise SystemExit(f"bench_models: measuring {key!r} failed (exit {child.returncode}):\n"
                         f"{tail}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def measure_all(args):
    """``{key: result}``, keys in run order; each value the median over ``--rounds``."""
    runs = {key: [] for key in args.models}
    for _ in range(args.rounds):
        for key in args.models:
            runs[key].append(measure_in_child(key, args) if args.memory else measure(key, args))
    return {key: median_result(results) for key, results in runs.items()}


def median_result(results):
    """The per-metric median of several rounds' results (``None`` stays ``None``)."""
    merged = dict(results[0])
    for name, value in results[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[name] = statistics.median(r[name] for r in results)
    return merged


# --- tables ---------------------------------------------------------------------------------

def row_label(key, network):
    """The preset name of the variant (``cnn9_tanh_cos``) where there is one, else ``key``."""
    if key == PLAIN:
        return PLAIN
    name = f"cnn9_{key}" if network == "cnn9" else key
    return name if name in PRESETS else key


def has_batch_norm(key):
    return True if key == PLAIN else parse_variant(key).batch_norm


def ratio(value, reference):
    return f"{value / reference:.3f}"


def print_header(args, results):
    first = next(iter(results.values()))
    sizes = f"widths {list(args.widths)}"
    if args.network == "cifar_resnet32":
        sizes += f", {args.units_per_stage} units/stage"
    where = ("each model in its own process (--memory)" if args.memory
             else "all models in one process")
    print(f"# {args.network}: {sizes}, batch {args.batch}, "
          f"{get_network(args.network).num_classes} classes")
    print(f"# backend {first['backend']} (keras {keras.__version__}), precision "
          f"{args.precision} (policy {POLICIES[args.precision]}), XLA {timing.uses_xla(args.jit)}, "
          f"device {first['device']}, {datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"# train step: {timing.train_step_description(args.jit)}; inference: "
          f"{timing.inference_description(args.jit)}")
    print(f"# medians of {args.repeats} timed calls after {args.warmup} warm-up calls, "
          f"median over {args.rounds} round(s); {where}")
    print(f"# {PLAIN}: keras.layers.Conv2D(use_bias=False) + BatchNormalization + ReLU, same "
          f"shapes (benchmarks/plain_keras_network.py), with batch norm in every row's place")


def print_time_table(args, results):
    base, plain = results[BASELINE], results[PLAIN]
    print("| model | BN | train step ms | train images/s | train / baseline | train / plain "
          "| inference ms | inference / baseline | inference / plain |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, r in results.items():
        train_ms, infer_ms = 1e3 * r["train_s"], 1e3 * r["infer_s"]
        print(f"| {row_label(key, args.network)} | {'yes' if has_batch_norm(key) else 'no'} "
              f"| {train_ms:.3f} | {args.batch / r['train_s']:.1f} "
              f"| {ratio(r['train_s'], base['train_s'])} | {ratio(r['train_s'], plain['train_s'])} "
              f"| {infer_ms:.3f} | {ratio(r['infer_s'], base['infer_s'])} "
              f"| {ratio(r['infer_s'], plain['infer_s'])} |")


def print_memory_table(args, results):
    base, plain = results[BASELINE], results[PLAIN]
    with_device = all(r.get("device_peak_bytes") for r in results.values())
    header = "| model | peak RSS MiB | RSS / baseline | RSS / plain |"
    rule = "|---|---:|---:|---:|"
    if with_device:
        header += " device peak MiB | device / baseline | device / plain |"
        rule += "---:|---:|---:|"
    print(header)
    print(rule)
    for key, r in results.items():
        rss = r["peak_rss_bytes"]
        line = (f"| {row_label(key, args.network)} | {rss / MIB:.1f} "
                f"| {ratio(rss, base['peak_rss_bytes'])} | {ratio(rss, plain['peak_rss_bytes'])} |")
        if with_device:
            peak = r["device_peak_bytes"]
            line += (f" {peak / MIB:.1f} | {ratio(peak, base['device_peak_bytes'])} "
                     f"| {ratio(peak, plain['device_peak_bytes'])} |")
        print(line)


# --- patch norm and ImageNet ----------------------------------------------------------------

def time_patch_norms(args):
    """``(shape, method, forward s, forward+backward s)`` of our box patch norm and the
    original's ones filter on the network's largest layer shapes."""
    rows = []
    dtype = "bfloat16" if args.precision == "bfloat16" else "float32"
    width = max(args.widths)
    shapes = [(args.batch, 32, 32, min(args.widths), 1), (args.batch, 16, 16, width // 2, 2),
              (args.batch, 8, 8, width, 1)]
    for n, h, w, c, stride in shapes:
        values = np.random.default_rng(0).random((n, h, w, c), np.float32)
        x = keras.ops.cast(keras.ops.convert_to_tensor(values), dtype)
        for name, norm in (("box (ours)", operators.patch_norm),
                           ("ones filter (original)", operators.patch_norm_ones_filter)):
            def total(x, norm=norm, stride=stride):
                return keras.ops.sum(norm(x, (3, 3), (stride, stride), "same"))

            forward = timing.compile_function(total, args.jit)
            backward = timing.compile_function(timing.input_gradient(total), args.jit)
            f_s = timing.median_seconds(lambda: timing.finished(forward(x)), args.warmup,
                                        args.repeats * 3)
            b_s = timing.median_seconds(lambda: timing.finished(backward(x)), args.warmup,
                                        args.repeats * 3)
            rows.append((f"[{n},{h},{w},{c}] s{stride}", name, f_s, b_s))
    return rows


def print_patch_norms(args):
    print("| input | patch norm | forward ms | forward+backward ms |")
    print("|---|---|---:|---:|")
    for shape, name, f_s, b_s in time_patch_norms(args):
        print(f"| {shape} | {name} | {f_s * 1e3:.2f} | {b_s * 1e3:.2f} |")


def time_imagenet(args):
    """Train-step and inference time of the full ImageNet network at batch 40."""
    keras.mixed_precision.set_global_policy(POLICIES[args.precision])
    rng = np.random.default_rng(0)
    images = keras.ops.convert_to_tensor(rng.normal(0, 60, (40, 224, 224, 3)).astype(np.float32))
    labels = keras.ops.convert_to_tensor(rng.integers(0, 1000, (40,)).astype(np.int32))
    model = build_model("imagenet")
    train = timing.make_train_step(model, get_recipe("dcnet_imagenet").make_optimizer(),
                                   args.jit)
    infer = timing.make_inference(model, args.jit)
    train_s = timing.median_seconds(lambda: train(images, labels), args.warmup, args.repeats)
    infer_s = timing.median_seconds(lambda: infer(images), args.warmup, args.repeats)
    print(f"# ImageNet network, full width, batch 40, precision {args.precision}, "
          f"XLA {timing.uses_xla(args.jit)}; {timing.device_description()}; "
          f"median of {args.repeats}")
    print("| network | train step s | inference s | 700001 steps (days) |")
    print("|---|---:|---:|---:|")
    print(f"| imagenet | {train_s:.2f} | {infer_s:.2f} | {train_s * 700001 / 86400:.0f} |")


# --- flags ----------------------------------------------------------------------------------

def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, received {text!r}")
    return value


#: steps per ``--host_reads`` timing.
HOST_READ_STEPS = 10


def time_host_reads(args, steps=HOST_READ_STEPS):
    """Seconds for ``steps`` training steps of ``tanh_cos`` (TrainStep, TensorFlow) when
    the loss is read back after every step (a host sync per step, as the training loop
    did before) and when only the last one is read (as it does now, every
    ``--check_every``): ``[(label, seconds)]``."""
    if timing.backend() != "tensorflow":
        return []
    from dcnet_keras.train_step import TrainStep

    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy(POLICIES[args.precision])
    network = get_network(args.network)
    model = build_benchmark_model("tanh_cos", args)
    images, labels = sample_batch(args.batch, network.num_classes)
    step = TrainStep(model, get_recipe(network.default_recipe).make_optimizer(),
                     jit_compile=bool(args.jit))

    def every_step():
        for _ in range(steps):
            timing.finished(step(images, labels)["loss"])

    def last_only():
        values = [step(images, labels) for _ in range(steps)]
        timing.finished(values[-1]["loss"])

    return [(f"{steps} steps, loss read after every step", timing.median_seconds(
                every_step, 1, args.repeats)),
            (f"{steps} steps, loss read once at the end", timing.median_seconds(
                last_only, 1, args.repeats))]


def print_host_reads(args):
    rows = time_host_reads(args)
    if not rows:
        print("# --host_reads: TensorFlow backend only (TrainStep)")
        return
    print("| tanh_cos train steps | s | per step ms |")
    print("|---|---:|---:|")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.3f} | {seconds / HOST_READ_STEPS * 1e3:.1f} |")


def make_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="cifar_resnet32", choices=tuple(DEFAULT_VARIANTS),
                        help="the 32x32 network to time (its own number of classes)")
    parser.add_argument("--batch", type=positive_int, default=128)
    parser.add_argument("--widths", type=positive_int, nargs=3, default=None,
                        help="stage widths (default: the network's)")
    parser.add_argument("--units_per_stage", type=positive_int, default=5,
                        help="cifar_resnet32 only")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="variants to time (baseline is always timed); cnn9 takes "
                             "'tanh_cos' or 'cnn9_tanh_cos'; default: the network's presets")
    parser.add_argument("--precision", default="float32", choices=tuple(POLICIES),
                        help="bfloat16: the Keras policy mixed_bfloat16 for every model")
    parser.add_argument("--jit", action="store_true",
                        help="XLA-compile the steps on TensorFlow (JAX always compiles with XLA)")
    parser.add_argument("--warmup", type=non_negative_int, default=2)
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--rounds", type=positive_int, default=1,
                        help="run every model this many times, alternated; report medians")
    parser.add_argument("--memory", action="store_true",
                        help="run each model in a fresh process and report its peak memory")
    parser.add_argument("--patch_norms", action="store_true",
                        help="also time the box patch norm against the ones-filter one")
    parser.add_argument("--host_reads", action="store_true",
                        help="also time 10 tanh_cos steps read back after every step against "
                             "read once (TensorFlow)")
    parser.add_argument("--imagenet", action="store_true",
                        help="time the ImageNet network instead (batch 40; TensorFlow backend "
                             "only)")
    parser.add_argument("--_measure", default=None, help=argparse.SUPPRESS)
    return parser


def variant_key(name, network, parser):
    """The variant a ``--variants`` entry names (``cnn9_`` stripped for CNN-9), checked."""
    key = name[len("cnn9_"):] if network == "cnn9" and name.startswith("cnn9_") else name
    try:
        parse_variant(key)
    except ValueError:
        parser.error(f"--variants: unknown variant {name!r}; e.g. "
                     f"{' '.join(DEFAULT_VARIANTS[network])}")
    return key


def parse_args(argv=None):
    parser = make_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv  # what a --memory child is given, with --_measure <model>
    if args.imagenet and timing.backend() != "tensorflow":
        parser.error(f"--imagenet: TensorFlow backend only, received "
                     f"KERAS_BACKEND={timing.backend()!r}")
    if args.widths is None:
        args.widths = list(get_network(args.network).options["widths"])
    names = args.variants or DEFAULT_VARIANTS[args.network]
    keys = [variant_key(name, args.network, parser) for name in names]
    args.models = list(dict.fromkeys([PLAIN, BASELINE, *keys]))  # run order, no repeats
    return args


def main(argv=None):
    args = parse_args(argv)
    if args._measure is not None:  # a child of --memory: one model, one JSON line
        result = measure(args._measure, args)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return
    if args.imagenet:
        return time_imagenet(args)
    results = measure_all(args)
    for key, r in results.items():
        if not math.isfinite(r["loss"]):
            print(f"# warning: {key} trained to a non-finite loss {r['loss']}")
    print_header(args, results)
    print()
    print_time_table(args, results)
    if args.memory:
        print()
        print_memory_table(args, results)
    if args.patch_norms:
        print()
        print_patch_norms(args)
    if args.host_reads:
        print()
        print_host_reads(args)


if __name__ == "__main__":
    main()
