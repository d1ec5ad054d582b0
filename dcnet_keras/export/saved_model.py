"""``export_saved_model``: a trained model as a TF Serving SavedModel in ``<out>/<version>/``.

The SavedModel holds the signatures of :mod:`dcnet_keras.export.signatures`
and ``serve``; it is written beside ``<out>/<version>`` and renamed into place
(:func:`~dcnet_keras.export.atomic.atomic_folder`), so a server never sees
half a model.  It tracks the ``tf.Variable`` behind each Keras variable: a
Keras variable tracked alone is saved as a copy, and TF1-style loaders
(``saved_model_cli run``, TF Serving) would leave the variables the graph reads
uninitialised ("Could not find variable ...").
"""

import os

import numpy as np
import tensorflow as tf

from dcnet_keras.export.atomic import atomic_folder
from dcnet_keras.export.checks import (check_class_names, check_exportable, model_kind,
                                       num_classes)
from dcnet_keras.export.errors import ExportError
from dcnet_keras.export.signatures import serving_functions


def _tf_variable(variable):
    """The ``tf.Variable`` behind a Keras variable (TensorFlow backend)."""
    inner = getattr(variable, "value", variable)
    return inner if isinstance(inner, tf.Variable) else variable


def export_saved_model(model, out_dir, version=1, kind="cifar", class_names=None,
                       allow_untrained=False, overwrite=False):
    """Write ``model`` as a TF Serving SavedModel in ``<out_dir>/<version>/``; return that path.

    Args:
      model: a built Keras model of :mod:`dcnet_keras.models` (or any model
        taking ``[N, 32, 32, 3]`` 0..255 RGB (``cifar``) or ``[N, 224, 224, 3]``
        mean-subtracted RGB (``imagenet``) and returning logits ``[N, K]``) whose
        weights are trained or restored.
      out_dir: the model's base folder, as given to TF Serving.
      version: positive integer, the version subfolder.
      kind: ``"cifar"`` or ``"imagenet"`` (``None``: from the model's input
        shape); a network's kind is ``get_network(name).input_kind``.
      class_names: optional ``K`` names; adds the ``class_name`` and
        ``top5_class_names`` outputs.
      allow_untrained: export even if every moving average is 0 (see
        :func:`~dcnet_keras.export.checks.check_exportable`).
      overwrite: replace an existing ``<out_dir>/<version>``.

    Raises :class:`ExportError` (a ``ValueError``) for an unbuilt or untrained
    model, a bad argument, or an existing version folder without ``overwrite``;
    nothing is written then.
    """
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ExportError(f"version: expected a positive integer, received {version!r}")
    check_exportable(model, allow_untrained)
    kind = model_kind(model, kind)
    class_names = check_class_names(class_names, num_classes(model, kind))

    target = os.path.join(os.path.abspath(os.fspath(out_dir)), str(int(version)))
    signatures, serve = serving_functions(model, kind, class_names)
    root = tf.Module()
    # Track the tf.Variables themselves: a Keras variable tracked alone is saved as a copy,
    # and TF1-style loaders (TF Serving, saved_model_cli run) would restore the copy and
    # leave the variables the functions read uninitialised.
    root.model_variables = [_tf_variable(v) for v in model.variables]
    root.serve = serve
    for name, function in signatures.items():
        setattr(root, name, function)
    try:
        with atomic_folder(target, overwrite) as staging:
            tf.saved_model.save(root, staging, signatures=signatures)
    except FileExistsError:
        raise ExportError(f"out: {target} already exists (choose another version, or "
                          "overwrite=True / --overwrite)") from None
    return target
