"""Choice of ``tf.distribute`` strategy for the training runs.

``auto``: ``MirroredStrategy`` over every GPU when there are several, else one
device.  ``mirrored``: ``MirroredStrategy`` over every GPU (or, without GPUs,
every logical CPU device).  ``one_device``: the first GPU, else the CPU.
``multiworker``: ``MultiWorkerMirroredStrategy`` configured by ``TF_CONFIG``.
"""

STRATEGIES = ("auto", "mirrored", "one_device", "multiworker")


def make_strategy(name):
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"--strategy: expected one of {', '.join(STRATEGIES)}, received {name!r}")
    if name == "multiworker":  # before anything starts TensorFlow's runtime
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "one_device" or (name == "auto" and len(gpus) < 2):
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if gpus:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    cpus = tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([c.name for c in cpus])
