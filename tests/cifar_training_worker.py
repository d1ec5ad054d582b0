"""Helper process for tests/test_cifar_training.py: one CIFAR training run in its own process.

    python cifar_training_worker.py OUT.npz VARIANT [--logical_cpus N] -- TRAIN_ARGS...

Optionally splits the first CPU into N logical devices (before TensorFlow starts) and sets
Keras's float type (``--floatx float64``: the whole run in float64), then calls
``dcnet_keras.training.cifar.main(VARIANT, <repo>, TRAIN_ARGS)`` and writes to OUT.npz:

- ``w/<index>/<path>``: every model weight as the process reads it (trainable weights, batch-norm
  moving averages and every other non-trainable weight);
- ``r/<index>/<replica>/<path>``: every per-replica (per-local-device) copy of that weight, from
  ``strategy.experimental_local_results`` (one copy outside multi-device strategies);
- ``meta``: a JSON string with the replica count, the strategy class, the variable classes and the
  final test accuracy.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)


def parse(argv):
    if "--" not in argv:
        sys.exit("usage: cifar_training_worker.py OUT.npz VARIANT [--logical_cpus N] -- ARGS")
    split = argv.index("--")
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("variant")
    p.add_argument("--logical_cpus", type=int, default=0)
    p.add_argument("--floatx", default=None, help="keras.config.set_floatx before training")
    return p.parse_args(argv[:split]), argv[split + 1:]


def main():
    options, train_args = parse(sys.argv[1:])
    import numpy as np
    import tensorflow as tf

    if options.logical_cpus:
        cpu0 = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu0, [tf.config.LogicalDeviceConfiguration()] * options.logical_cpus)

    if options.floatx:
        import keras

        keras.config.set_floatx(options.floatx)
    from dcnet_keras.training.cifar import main as train

    result = train(options.variant, REPO, train_args)
    strategy = result.strategy
    arrays = {}
    classes = set()
    for index, weight in enumerate(result.model.weights):
        key = f"{index:04d}/{weight.path}"
        arrays[f"w/{key}"] = np.array(weight.numpy())
        variable = getattr(weight, "value", weight)
        classes.add(type(variable).__name__)
        for replica, local in enumerate(strategy.experimental_local_results(variable)):
            arrays[f"r/{key}/{replica}"] = np.array(local.numpy())
    meta = dict(replicas=int(strategy.num_replicas_in_sync),
                strategy=type(strategy).__name__,
                variable_classes=sorted(classes),
                test_accuracy=float(result.test_accuracy))
    arrays["meta"] = np.array(json.dumps(meta))
    tmp = options.out + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, options.out)


if __name__ == "__main__":
    main()
