"""Speed of the CIFAR input pipelines (``dcnet_keras.data.cifar_pipelines``).

Builds a full-size synthetic set (50000 train / 10000 test images; the pipeline does not care
what the pixels are) and prints the images per second that the training pipeline (shuffle
buffer 20000, the chosen augmentation, batch 128) and the test pipeline (batch 100, one
ordered pass) deliver, plus the time to the first training batch (filling the shuffle buffer)
and the size of a saved training-iterator checkpoint. CIFAR-10 and CIFAR-100 share the
pipelines; ``--num_classes`` only changes the labels.

    python benchmarks/bench_cifar_input.py
    python benchmarks/bench_cifar_input.py --batches 400 --shuffle_buffer 20000
    python benchmarks/bench_cifar_input.py --augmentation flip --num_classes 10
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dcnet_keras.data import cifar_pipelines  # noqa: E402
from dcnet_keras.data.synthetic import synthetic_cifar  # noqa: E402
from dcnet_keras.data.throughput import pipeline_throughput  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import print_table  # noqa: E402


def checkpoint_megabytes(dataset, batches):
    iterator = iter(dataset)
    for _ in range(batches):
        next(iterator)
    with tempfile.TemporaryDirectory() as tmp:
        tf.train.Checkpoint(iterator=iterator).save(os.path.join(tmp, "ckpt"))
        size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
    return size / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200, help="timed batches")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches first")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--shuffle_buffer", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--augmentation", default="pad_crop_flip",
                        choices=cifar_pipelines.AUGMENTATIONS)
    parser.add_argument("--num_classes", type=int, default=100, choices=(10, 100))
    args = parser.parse_args()

    start = time.perf_counter()
    xtr, ytr, xte, yte = synthetic_cifar(num_train=50000, num_test=10000,
                                         num_classes=args.num_classes, seed=args.seed)
    make_s = time.perf_counter() - start

    def train():
        return cifar_pipelines.train_dataset(xtr, ytr, args.batch_size, seed=args.seed,
                                             shuffle_buffer=args.shuffle_buffer,
                                             augmentation=args.augmentation)

    start = time.perf_counter()
    next(iter(train()))
    first_batch_s = time.perf_counter() - start
    train_ips = pipeline_throughput(train(), args.batches, warmup=args.warmup)
    test_ips = pipeline_throughput(cifar_pipelines.test_dataset(xte, yte, 100), 100, warmup=0)
    ckpt_mb = checkpoint_megabytes(train(), 3)

    print(f"# CIFAR input pipelines ({args.augmentation}, {args.num_classes} classes); "
          f"TensorFlow {tf.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; synthetic 50000/10000 images made in {make_s:.1f} s")
    rows = [
        ("train: %s, batch %d, buffer %d, %d batches after %d warm-up"
         % (args.augmentation, args.batch_size, args.shuffle_buffer, args.batches, args.warmup),
         f"{train_ips:,.0f} img/s", f"{train_ips / args.batch_size:,.1f} batch/s"),
        ("test: batch 100, one pass over 10000 (incl. start)",
         f"{test_ips:,.0f} img/s", f"{test_ips / 100:,.1f} batch/s"),
        ("train: time to first batch (fills the buffer)", f"{first_batch_s:.2f} s", ""),
        ("train: iterator checkpoint after 3 batches", f"{ckpt_mb:.1f} MiB", ""),
    ]
    note = ("Read: the input is no bottleneck while its batch/s exceeds the training steps/s of the "
            "model (benchmarks/bench_models.py) on the same machine; both pipelines use every "
            "core (AUTOTUNE), so they compete with the model for CPU.")
    print_table(rows, note)


if __name__ == "__main__":
    main()
