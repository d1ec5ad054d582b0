"""Speed of the 32x32 networks' variants relative to ``baseline``, and of the patch norm.

Prints two tables: (1) per variant, the train-step time (forward + backward +
Adam update: the project's one ``TrainStep``) and the inference time at the given batch, each
as a ratio to ``baseline`` (plain convolutions, same graph); (2) our patch norm
(channel sum + box filter) against the original's ones-filter convolution,
forward and forward+backward, on the network's largest layer shapes.

    python benchmarks/bench_models.py                 # full width, batch 128
    python benchmarks/bench_models.py --widths 32 64 128 --repeats 3
    python benchmarks/bench_models.py --network cnn9   # CNN-9 (128, 192, 256)
    python benchmarks/bench_models.py --imagenet      # the ImageNet network's step, batch 40

Numbers are medians of ``--repeats`` timed runs after ``--warmup`` untimed ones,
all in one process; compare ratios from one run only.
"""

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dcnet_keras import operators  # noqa: E402
from dcnet_keras.models import build_model, get_network  # noqa: E402
from dcnet_keras.recipes import get_recipe  # noqa: E402
from dcnet_keras.train_step import TrainStep  # noqa: E402

VARIANTS = ("baseline", "tanh_cos", "ball_cos", "seg_cos", "linear_cos", "linear_sqcos_wo_bn")


def median_seconds(fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_step(model, recipe, images, labels, args):
    """Median seconds of one training step (the project's TrainStep) and one inference."""
    step = TrainStep(model, get_recipe(recipe).make_optimizer(), jit_compile=args.jit)
    infer = tf.function(lambda x: model(x, training=False), jit_compile=args.jit)
    train_s = median_seconds(lambda: step(images, labels)["loss"].numpy(), args.warmup,
                             args.repeats)
    infer_s = median_seconds(lambda: infer(images).numpy(), args.warmup, args.repeats)
    return train_s, infer_s


def time_variant(variant, args, images, labels):
    options = dict(widths=tuple(args.widths))
    if args.network == "cifar_resnet32":
        options["units_per_stage"] = args.units_per_stage
    model = build_model(args.network, variant=variant, num_classes=100, **options)
    return time_step(model, get_network(args.network).default_recipe, images, labels, args)


def time_imagenet(args):
    """Train-step and inference time of the full ImageNet network at batch 40."""
    rng = np.random.default_rng(0)
    images = tf.constant(rng.normal(0, 60, (40, 224, 224, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 1000, (40,)).astype(np.int32))
    train_s, infer_s = time_step(build_model("imagenet"), "dcnet_imagenet", images, labels,
                                 args)
    print(f"# ImageNet network, full width, batch 40; median of {args.repeats}")
    print("| network | train step s | inference s | 700001 steps (days) |")
    print("|---|---:|---:|---:|")
    print(f"| imagenet | {train_s:.2f} | {infer_s:.2f} | {train_s * 700001 / 86400:.0f} |")


def time_patch_norms(args):
    rows = []
    width = max(args.widths)
    shapes = [(args.batch, 32, 32, min(args.widths), 1), (args.batch, 16, 16, width // 2, 2),
              (args.batch, 8, 8, width, 1)]
    for n, h, w, c, stride in shapes:
        x = tf.constant(np.random.default_rng(0).random((n, h, w, c), np.float32))
        for name, fn in (("box (ours)", operators.patch_norm),
                         ("ones filter (original)", operators.patch_norm_ones_filter)):
            def forward(x=x, fn=fn):
                return tf.reduce_sum(fn(x, (3, 3), (stride, stride), "same"))

            fwd = tf.function(forward)

            @tf.function
            def backward(x=x, forward=forward):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = forward(x)
                return tape.gradient(y, x)

            f_s = median_seconds(lambda: fwd().numpy(), args.warmup, args.repeats * 3)
            b_s = median_seconds(lambda: backward().numpy(), args.warmup, args.repeats * 3)
            rows.append((f"[{n},{h},{w},{c}] s{stride}", name, f_s, b_s))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--network", default="cifar_resnet32", choices=("cifar_resnet32", "cnn9"),
                        help="the 32x32 network to time (100 classes)")
    parser.add_argument("--widths", type=int, nargs=3, default=None,
                        help="stage widths (default: the network's)")
    parser.add_argument("--units_per_stage", type=int, default=5, help="cifar_resnet32 only")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="XLA-compile the steps")
    parser.add_argument("--imagenet", action="store_true",
                        help="time the ImageNet network instead (batch 40)")
    args = parser.parse_args()
    if args.imagenet:
        return time_imagenet(args)
    if args.widths is None:
        args.widths = list(get_network(args.network).options["widths"])
    if "baseline" not in args.variants:
        args.variants.insert(0, "baseline")

    rng = np.random.default_rng(0)
    images = tf.constant(rng.integers(0, 256, (args.batch, 32, 32, 3)).astype(np.float32))
    labels = tf.constant(rng.integers(0, 100, (args.batch,)).astype(np.int32))
    units = f"{args.units_per_stage} units/stage, " if args.network == "cifar_resnet32" else ""
    print(f"# {args.network}, widths {args.widths}, {units}"
          f"batch {args.batch}, jit={args.jit}; TensorFlow {tf.__version__}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}; median of {args.repeats}")
    results = {v: time_variant(v, args, images, labels) for v in args.variants}
    base_train, base_infer = results["baseline"]
    print(f"| variant | train step s | train / baseline | inference s | inference / baseline |")
    print(f"|---|---:|---:|---:|---:|")
    for variant, (train_s, infer_s) in results.items():
        print(f"| {variant} | {train_s:.3f} | {train_s / base_train:.3f} | {infer_s:.3f} | "
              f"{infer_s / base_infer:.3f} |")

    print()
    print("| input | patch norm | forward ms | forward+backward ms |")
    print("|---|---|---:|---:|")
    for shape, name, f_s, b_s in time_patch_norms(args):
        print(f"| {shape} | {name} | {f_s * 1e3:.2f} | {b_s * 1e3:.2f} |")


if __name__ == "__main__":
    main()
