"""Load a trained model from where a run, the original scripts or an export left it.

- :func:`load_keras_file`: a ``.keras`` file (the end of a training run);
- :func:`load_training_checkpoint`: the newest ``tf.train.Checkpoint`` of a run
  (``<model_dir>/checkpoints/``, a checkpoint folder, or a prefix);
- :func:`load_original_checkpoint`: a name-based checkpoint of the original TF1
  scripts (``model.ckpt``, ``42499``);
- :func:`load_saved_model`: a SavedModel folder (for evaluation only: it cannot
  be re-exported);
- :func:`load_model`: one of the first three, chosen by the path and ``tf1``.

A checkpoint holds weights, not the network: the model is built from a
:class:`~dcnet_keras.models.registry.ModelSpec` (or a preset / network name,
or a ``ModelSpec.to_dict()``; for a run that wrote ``model_spec.json``, the
one stored there) through the network registry, and the kind of its serving
signatures is the network's ``input_kind``.  Every loader returns the
model with its kind (``"cifar"`` / ``"imagenet"``; ``None`` when a ``.keras``
model's input shape does not tell) and raises :class:`ExportError` with a
one-line message for a missing, foreign or mismatched file.
"""

import os

import tensorflow as tf

from dcnet_keras.export.checks import model_kind
from dcnet_keras.export.errors import ExportError
from dcnet_keras.export.signatures import KINDS, input_size
from dcnet_keras.export.spec_file import (SPEC_FILE, check_against_stored, find_spec_file,
                                          read_model_spec)


# ----------------------------------------------------------------------------- specs


def as_spec(spec):
    """A :class:`ModelSpec` from a ``ModelSpec``, its ``to_dict()``, or a preset/network name."""
    from dcnet_keras.models.registry import ModelSpec, resolve

    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, dict):
        return ModelSpec(**spec)
    if isinstance(spec, str):
        return resolve(spec)
    raise ExportError(f"spec: expected a ModelSpec, its dict or a preset/network name, "
                      f"received {spec!r}")


def describe_spec(spec):
    """``'<variant>' model with widths (...) [and U units per stage]...`` for messages."""
    from dcnet_keras.models.registry import get_network

    network = get_network(spec.network)
    options = {**network.options, **dict(spec.options)}
    text = f"'{spec.variant}' model with widths {tuple(options.get('widths', ()))}"
    if "units_per_stage" in options:
        text += f" and {options['units_per_stage']} units per stage"
    extra = [f"{k}={v}" for k, v in options.items() if k not in ("widths", "units_per_stage")]
    if not spec.batch_norm:
        extra.append("no batch norm")
    return (text + f" (network {spec.network}, {spec.num_classes} classes"
            + "".join(f", {e}" for e in extra) + ")")


def _build(spec):
    from dcnet_keras.models.registry import build_from_spec, get_network

    return build_from_spec(spec), get_network(spec.network).input_kind


# ----------------------------------------------------------------------------- files


def load_keras_file(path):
    """The model of a ``.keras`` file (any error becomes an :class:`ExportError`)."""
    import keras

    if not os.path.isfile(path):
        raise ExportError(f"model: no .keras file at {path!r}")
    import dcnet_keras.layers  # noqa: F401  (registers the custom layers)

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # a corrupt or foreign file: say so in one line
        raise ExportError(f"model: cannot load {path!r} as a .keras file: "
                          f"{type(error).__name__}: {error}") from None


def checkpoint_prefix(path):
    """The newest readable checkpoint prefix at ``path`` (model_dir, checkpoint folder, or
    prefix).

    In a folder, checkpoints ``ckpt-N`` are found by scanning it and the newest
    whose files all read back intact is taken; newer broken ones are passed
    over with a one-line warning each (the same choice as a resumed run makes:
    :func:`dcnet_keras.training.checkpoints.newest_readable`).  A folder without
    ``ckpt-N`` files (the original TF1 scripts' ``model.ckpt-N``) is read
    through its ``checkpoint`` state file.  An explicit prefix is taken as it is.
    """
    from dcnet_keras.training.checkpoints import CheckpointError, newest_readable

    if os.path.exists(path + ".index"):
        return path
    if os.path.isdir(path):
        for folder in (os.path.join(path, "checkpoints"), path):
            if os.path.isdir(folder):
                try:
                    newest, _ = newest_readable(folder)
                except CheckpointError as error:
                    raise ExportError(f"model: {error}") from None
                if newest:
                    return newest
                try:
                    latest = tf.train.latest_checkpoint(folder)
                except (ValueError, tf.errors.OpError):  # an empty or garbage state file
                    latest = None
                if latest:
                    return latest
    raise ExportError(f"model: no checkpoint at {path!r} (expected a model_dir with "
                      "checkpoints/, a folder with a 'checkpoint' file, or a checkpoint prefix)")


def _is_object_based(prefix):
    try:
        names = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as error:
        raise ExportError(f"model: cannot read checkpoint {prefix!r}: {error}") from None
    return "_CHECKPOINTABLE_OBJECT_GRAPH" in names


def load_training_checkpoint(path, spec=None):
    """``(model, kind)``: the ``spec`` model restored from a checkpoint of a training run.

    The run saves ``tf.train.Checkpoint(model=..., optimizer=..., ...)``; only
    ``model`` is read, and every weight and moving average of the built model
    must be in the checkpoint (``assert_existing_objects_matched``), so wrong
    widths, units, classes or batch norms are an error, never a model with
    fresh weights.  Operators with the same weights (``tanh_cos`` and
    ``ball_cos``) cannot be told apart by the weights: when the run wrote
    ``model_spec.json`` (:mod:`dcnet_keras.export.spec_file`), ``spec=None``
    builds the model it names and a ``spec`` that differs from it is an error.
    """
    prefix = checkpoint_prefix(path)
    if not _is_object_based(prefix):
        raise ExportError(f"model: {prefix!r} is a name-based checkpoint, as the original TF1 "
                          "scripts write; pass --tf1 (load_original_checkpoint)")
    stored, _ = read_model_spec(path)
    if spec is None:
        if stored is None:
            raise ExportError(f"model: {path!r} has no {SPEC_FILE}: name its model (a preset, "
                              "or --network with --variant, --widths, ...)")
        spec = stored
    else:
        spec = as_spec(spec)
        if stored is not None:
            check_against_stored(spec, stored, find_spec_file(path))
    model, kind = _build(spec)
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()  # the optimiser, data iterator and iteration are not needed
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ExportError(
            f"model: checkpoint {prefix!r} does not fit a {describe_spec(spec)} (check "
            "--preset/--network, --variant, --widths, --units_per_stage, --num_classes, "
            f"--no_bn, --no_relu): {error}") from None
    return model, kind


def load_original_checkpoint(path, spec):
    """``(model, kind)``: the ``spec`` model loaded from a checkpoint of the original TF1
    scripts (:func:`dcnet_keras.tf1_checkpoint.load_tf1_checkpoint`; a mismatch raises its
    ``CheckpointMismatchError``, a ``ValueError``)."""
    from dcnet_keras.tf1_checkpoint import load_tf1_checkpoint

    if not (os.path.exists(path + ".index") or os.path.isdir(path)):
        raise ExportError(f"model: no checkpoint at {path!r}")
    prefix = path if os.path.exists(path + ".index") else checkpoint_prefix(path)
    if _is_object_based(prefix):
        raise ExportError(f"model: {prefix!r} is a training checkpoint of this port, not one "
                          "of the original TF1 scripts; drop --tf1")
    model, kind = _build(as_spec(spec))
    load_tf1_checkpoint(model, prefix)
    return model, kind


def is_saved_model(path):
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


def load_model(path, spec=None, tf1=False):
    """``(model, kind)`` from a ``.keras`` file, a training checkpoint (``spec``: see
    :func:`load_training_checkpoint`), or with ``tf1`` an original TF1 checkpoint (``spec``
    required)."""
    path = os.fspath(path)
    if not (os.path.exists(path) or os.path.exists(path + ".index")):
        raise ExportError(f"model: nothing at {path!r} (expected a .keras file, a "
                          "model_dir, a checkpoint folder or a checkpoint prefix)")
    if path.endswith(".keras"):
        model = load_keras_file(path)
        try:
            return model, model_kind(model)
        except ExportError:
            return model, None
    if is_saved_model(path):
        raise ExportError(f"model: {path!r} is a SavedModel (already exported); export the "
                          ".keras file or the checkpoint it came from")
    if tf1:
        if spec is None:
            raise ExportError(f"model: {path!r} is a checkpoint of the original scripts: name "
                              "its model (a preset, or --network with --variant, --widths, ...)")
        return load_original_checkpoint(path, spec)
    return load_training_checkpoint(path, spec)


# ----------------------------------------------------------------------------- SavedModels


def _saved_model_kind(loaded):
    """``cifar`` / ``imagenet`` from a SavedModel's functions; ``None`` if they do not tell.

    Our exports: ``serving_preprocessed`` only for ImageNet; ``model.export``:
    ``serve``'s input signature ``[None, H, W, 3]``.
    """
    if "serving_preprocessed" in loaded.signatures:
        return "imagenet"
    by_shape = {(input_size(k), input_size(k), 3): k for k in KINDS}
    for function in getattr(getattr(loaded, "serve", None), "concrete_functions", ()):
        args = function.structured_input_signature[0]
        shape = getattr(args[0], "shape", None) if args else None
        if shape is not None and shape.rank == 4:
            kind = by_shape.get(tuple(shape[1:]))
            if kind:
                return kind
    if "serving_bytes" in loaded.signatures:
        return "cifar"
    return None


def load_saved_model(path):
    """``(predict, kind)`` of a SavedModel folder: ``predict(float32 network input) -> logits``.

    ``predict`` calls ``serve`` (our exports and ``model.export`` write it),
    else the ``serving_default`` signature (its input cast to the signature's
    dtype) and returns its ``logits`` (or its only output).
    """
    path = os.fspath(path)
    if not is_saved_model(path):
        raise ExportError(f"model: no SavedModel at {path!r} (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(path)
    except Exception as error:  # a corrupt or foreign folder: say so in one line
        raise ExportError(f"model: cannot load {path!r} as a SavedModel: "
                          f"{type(error).__name__}: {error}") from None
    serve = getattr(loaded, "serve", None)
    if serve is not None:
        def predict(images, loaded=loaded):  # `loaded` keeps the variables alive
            return serve(tf.convert_to_tensor(images, tf.float32))
    else:
        if "serving_default" not in loaded.signatures:
            raise ExportError(f"model: the SavedModel {path!r} has neither a 'serve' function "
                              "nor a 'serving_default' signature")
        signature = loaded.signatures["serving_default"]
        inputs = list(signature.structured_input_signature[1])
        if len(inputs) != 1:
            raise ExportError(f"model: the serving_default signature of {path!r} takes "
                              f"{len(inputs)} inputs {inputs}; expected one (the images)")

        dtype = signature.structured_input_signature[1][inputs[0]].dtype

        def predict(images, loaded=loaded):
            out = signature(**{inputs[0]: tf.cast(images, dtype)})
            return out["logits"] if "logits" in out else next(iter(out.values()))
    return predict, _saved_model_kind(loaded)
