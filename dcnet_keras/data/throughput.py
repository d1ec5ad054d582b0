"""How fast an input pipeline delivers images (for the benchmarks)."""

import time


def pipeline_throughput(dataset, batches, warmup=2):
    """Images per second delivered by ``dataset`` over ``batches`` batches.

    ``count / seconds``, where ``count`` sums ``batch[0].shape[0]`` over the timed batches. The
    first ``warmup`` batches are taken untimed (they include filling a shuffle buffer); 0.0 if
    the dataset ends during the warm-up. Stops early, counting what it got, if the dataset ends.
    """
    iterator = iter(dataset)
    for _ in range(warmup):
        if next(iterator, None) is None:
            return 0.0
    count = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator, None)
        if batch is None:
            break
        count += int(batch[0].shape[0])
    elapsed = time.perf_counter() - start
    return count / elapsed if elapsed > 0 else 0.0
