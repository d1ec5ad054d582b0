"""What a model must be before it is exported: built, trained or restored, of a known kind."""

import numpy as np
import tensorflow as tf

from dcnet_keras.export.errors import ExportError
from dcnet_keras.export.signatures import KINDS, input_size


def check_exportable(model, allow_untrained=False):
    """Raise :class:`ExportError` unless ``model`` has built, trained/restored weights.

    A model whose every moving average (its non-trainable variables: batch-norm
    statistics, mean patch norms, their debias state) is still exactly 0 was
    never trained nor restored: its inference-mode outputs come from freshly
    initialised weights.  ``allow_untrained`` lets it through.  A model with no
    moving average at all (``linear_sqcos_wo_bn``) cannot be checked this way
    and is accepted.
    """
    if not getattr(model, "built", False) or not model.weights:
        raise ExportError(
            f"model '{model.name}' has no weights: it was never built nor loaded. Build it "
            "and restore trained weights first (a training checkpoint, a .keras file, or an "
            "original TF1 checkpoint with load_tf1_checkpoint)")
    if allow_untrained:
        return
    averages = list(model.non_trainable_variables)
    if averages and all(not np.any(np.asarray(v.numpy())) for v in averages):
        raise ExportError(
            f"model '{model.name}' looks untrained: all {len(averages)} moving averages "
            "(batch-norm statistics, mean patch norms) are exactly 0, so its weights were "
            "never trained nor restored and the served outputs would be those of a random "
            "network. Restore trained weights first, or pass allow_untrained=True "
            "(--allow_untrained) to export it anyway")


def input_shape(model):
    """The model's input shape without the batch axis, or ``None`` if it has no ``inputs``."""
    inputs = getattr(model, "inputs", None)
    return tuple(inputs[0].shape[1:]) if inputs else None


def model_kind(model, kind=None):
    """``kind`` checked against the model's input shape; inferred from it when ``None``.

    ``[N, 32, 32, 3]`` is ``cifar``, ``[N, 224, 224, 3]`` is ``imagenet``.
    """
    shape = input_shape(model)
    by_shape = {(input_size(k), input_size(k), 3): k for k in KINDS}
    if kind is None:
        if shape not in by_shape:
            raise ExportError(f"kind: cannot tell from the model's input shape {shape} whether "
                              f"it is a CIFAR or an ImageNet model; pass kind (--kind)")
        return by_shape[shape]
    if kind not in KINDS:
        raise ExportError(f"kind: expected one of {KINDS}, received {kind!r}")
    size = input_size(kind)
    if shape is not None and shape != (size, size, 3):
        raise ExportError(f"kind: a {kind} model takes [N, {size}, {size}, 3] images, but "
                          f"this model's input is {(None,) + shape}")
    return kind


def num_classes(model, kind):
    """The number of logits ``model`` returns for one image of ``kind``."""
    size = input_size(kind)
    logits = model(tf.zeros([1, size, size, 3], tf.float32), training=False)
    if len(logits.shape) != 2:
        raise ExportError(f"model '{model.name}' returns shape {tuple(logits.shape)} for one "
                          "image; expected logits [N, classes]")
    return int(logits.shape[-1])


def check_class_names(class_names, classes):
    """``class_names`` as a list of ``classes`` strings (``None`` stays ``None``)."""
    if class_names is None:
        return None
    names = [str(n) for n in class_names]
    if len(names) != classes:
        raise ExportError(f"class_names: the model has {classes} classes but "
                          f"{len(names)} names were given")
    return names
