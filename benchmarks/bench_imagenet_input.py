"""Speed of the ImageNet input pipelines (``dcnet_keras.data.imagenet``).

Writes synthetic ImageNet-like JPEGs (default 512 images of 500x375, ImageNet's most common
size; ``shard_writer.random_image``: smooth colour fields plus noise, so they compress to
roughly ImageNet's ~110 KB per image) into a temporary folder as slim-format ``train-*`` / ``validation-*`` shards, then
prints the images per second that the training pipeline (record shuffle, JPEG decode, mean,
TF1 resize to 256x256, random 224 crop + flip, batch 40) and the eval pipeline (decode, mean,
resize, central crop, batch 40, one ordered pass) deliver, and the time to the first training
batch (filling the shuffle buffer).

    python benchmarks/bench_imagenet_input.py
    python benchmarks/bench_imagenet_input.py --images 1024 --batches 100
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dcnet_keras.data import imagenet as ind  # noqa: E402
from dcnet_keras.data.imagenet_forensics import find_bad_record  # noqa: E402
from dcnet_keras.data.imagenet_records import shard_files  # noqa: E402
from dcnet_keras.data.shard_writer import random_image, write_shards  # noqa: E402
from dcnet_keras.data.throughput import pipeline_throughput  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from table import print_table  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512, help="synthetic images per split")
    parser.add_argument("--height", type=int, default=375)
    parser.add_argument("--width", type=int, default=500)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=40)
    parser.add_argument("--batches", type=int, default=50, help="timed training batches")
    parser.add_argument("--warmup", type=int, default=5, help="untimed training batches first")
    parser.add_argument("--shuffle_buffer", type=int, default=1024,
                        help="record shuffle buffer (ImageNet runs use 10000)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        images = [random_image(args.height, args.width, seed=k) for k in range(args.images)]
        labels = [1 + k % 1000 for k in range(args.images)]
        write_shards(folder, "train", images, labels, args.shards)
        write_shards(folder, "validation", images, labels, args.shards)
        write_s = time.perf_counter() - start
        jpeg_kb = sum(os.path.getsize(p) for p in shard_files(folder, "train"))
        jpeg_kb /= 1024 * args.images

        def train():
            return ind.train_dataset(folder, args.batch_size, seed=0,
                                     shuffle_buffer=args.shuffle_buffer)

        start = time.perf_counter()
        next(iter(train()))
        first_batch_s = time.perf_counter() - start
        train_ips = pipeline_throughput(train(), args.batches, warmup=args.warmup)
        eval_batches = -(-args.images // args.batch_size)
        eval_ips = pipeline_throughput(ind.eval_dataset(folder, args.batch_size),
                                       eval_batches, warmup=0)
        start = time.perf_counter()
        problem = find_bad_record(shard_files(folder, "validation"))
        scan_ips = args.images / (time.perf_counter() - start)
        assert problem is None, problem

    print(f"# ImageNet input pipelines; TensorFlow {tf.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs; {args.images} synthetic {args.width}x{args.height} JPEGs "
          f"(~{jpeg_kb:.0f} KB each) in {args.shards} shards, written in {write_s:.1f} s")
    rows = [
        (f"train: batch {args.batch_size}, buffer {args.shuffle_buffer}, {args.batches} batches "
         f"after {args.warmup} warm-up", f"{train_ips:,.0f} img/s",
         f"{train_ips / args.batch_size:,.1f} batch/s"),
        (f"eval: batch {args.batch_size}, one pass over {args.images} (incl. start)",
         f"{eval_ips:,.0f} img/s", f"{eval_ips / args.batch_size:,.1f} batch/s"),
        ("find_bad_record over the validation shards (decodes all)", f"{scan_ips:,.0f} img/s",
         ""),
        ("train: time to first batch (fills the buffer)", f"{first_batch_s:.2f} s", ""),
    ]
    note = ("Read: decoding scales with the cores (AUTOTUNE); the input keeps up while its batch/s "
            "exceeds the model's training steps/s at batch 40 on the same machine "
            "(benchmarks/bench_models.py); real ImageNet JPEGs vary in size, so treat this as an "
            "estimate within a factor of about 1.5.")
    print_table(rows, note)


if __name__ == "__main__":
    main()
