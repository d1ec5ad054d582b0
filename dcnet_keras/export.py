"""Export a trained DCNet as a SavedModel for TensorFlow Serving (TensorFlow only).

    python -m dcnet_keras.export model/tanh_cos/tanh_cos.keras --out serving/tanh_cos
    python -m dcnet_keras.export model/tanh_cos --variant tanh_cos --out serving/tanh_cos
    python -m dcnet_keras.export path/model.ckpt --tf1 --variant imagenet \\
        --widths 128 256 512 1024 --out serving/imagenet

The first form reads a ``.keras`` file, the second the newest training
checkpoint of a run (``<model_dir>/checkpoints/``, or a checkpoint folder or
prefix), the third a checkpoint written by the original TF1 scripts.  The
SavedModel goes to ``<out>/<version>/`` (default version 1), the layout TF
Serving watches; it is written beside it first and renamed into place, so a
server never sees half a model.

Signatures (inference mode: moving averages, never batch statistics; any
batch size N >= 1):

- ``serving_default``, input ``images``: uint8 RGB ``[N, 32, 32, 3]`` (CIFAR),
  or uint8 RGB ``[N, H, W, 3]`` of any size (ImageNet: the original's
  evaluation preprocessing runs in the graph, see
  :mod:`dcnet_keras.data.imagenet_preprocessing`);
- ``serving_bytes``, input ``image_bytes``: string ``[N]`` of encoded JPEG/PNG
  images (CIFAR: 32x32 ones; ImageNet: any size, preprocessed as above);
- ``serving_preprocessed`` (ImageNet only), input ``images``: float32
  ``[N, 224, 224, 3]``, mean-subtracted: the network's own input.

Every signature returns ``logits`` (float32 ``[N, K]``), ``probabilities``
(float32, softmax of the logits), ``classes`` (int64 ``[N]``, the arg max) and
``top5_classes`` (int64 ``[N, min(5, K)]``, best first); with ``class_names``
also ``class_name`` (string ``[N]``) and ``top5_class_names`` (string
``[N, min(5, K)]``).  The SavedModel also has the function ``serve`` (not a
signature), as ``model.export`` writes it: the model's own float32 input ->
logits (``dcnet_keras.evaluate`` uses it).

The inputs' signature shapes are left open (dtype only) and checked in the
graph: with a static shape in the signature, TensorFlow's graph optimiser
folds a rank check away, and a tensor of the wrong rank reaching the
convolutions aborts the process (oneDNN ``Check failed``).  A wrong shape
raises ``InvalidArgumentError`` naming the signature, the expected shape and
the shape received; a wrong dtype is rejected by TensorFlow itself
(``... was expected to be a uint8 tensor but is a float tensor``).

The SavedModel tracks the ``tf.Variable`` behind each Keras variable: a Keras
variable tracked alone is saved as a copy, and TF1-style loaders
(``saved_model_cli run``, TF Serving) would leave the variables the graph
reads uninitialised ("Could not find variable ...").
"""

import argparse
import os
import shutil
import sys
import tempfile

import numpy as np
import tensorflow as tf

KINDS = ("cifar", "imagenet")
CIFAR_SIZE = 32
IMAGENET_INPUT_SIZE = 224
TOP_K = 5
DEFAULT_WIDTHS = {"cifar": (96, 192, 384), "imagenet": (128, 256, 512, 1024)}
DEFAULT_CLASSES = {"cifar": 100, "imagenet": 1000}
IMAGENET_VARIANT = "imagenet"


class ExportError(ValueError):
    """The model or its checkpoint cannot be exported; the message says why."""


# ----------------------------------------------------------------------------- checks


def _moving_average_variables(model):
    """Every non-trainable variable: the TF1 moving averages (and their debias state)."""
    return list(model.non_trainable_variables)


def check_exportable(model, allow_untrained=False):
    """Raise :class:`ExportError` unless ``model`` has built, trained/restored weights.

    A model whose every moving average (batch-norm statistics, mean patch norms)
    is still exactly 0 was never trained nor restored: its inference-mode
    outputs come from freshly initialised weights.  ``allow_untrained`` lets
    it through.  A model with no moving average at all (``linear_sqcos_wo_bn``)
    cannot be checked this way and is accepted.
    """
    if not getattr(model, "built", False) or not model.weights:
        raise ExportError(
            f"model '{model.name}' has no weights: it was never built nor loaded. Build it "
            "and restore trained weights first (a training checkpoint, a .keras file, or an "
            "original TF1 checkpoint with load_tf1_checkpoint)")
    if allow_untrained:
        return
    averages = _moving_average_variables(model)
    if averages and all(not np.any(np.asarray(v.numpy())) for v in averages):
        raise ExportError(
            f"model '{model.name}' looks untrained: all {len(averages)} moving averages "
            "(batch-norm statistics, mean patch norms) are exactly 0, so its weights were "
            "never trained nor restored and the served outputs would be those of a random "
            "network. Restore trained weights first, or pass allow_untrained=True "
            "(--allow_untrained) to export it anyway")


def _model_kind(model, kind):
    """``kind``, checked against the model's input shape; inferred from it if ``None``."""
    shape = None
    inputs = getattr(model, "inputs", None)
    if inputs:
        shape = tuple(inputs[0].shape[1:])
    by_shape = {(CIFAR_SIZE, CIFAR_SIZE, 3): "cifar",
                (IMAGENET_INPUT_SIZE, IMAGENET_INPUT_SIZE, 3): "imagenet"}
    if kind is None:
        if shape not in by_shape:
            raise ExportError(f"kind: cannot tell from the model's input shape {shape} whether "
                              f"it is a CIFAR or an ImageNet model; pass kind (--kind)")
        return by_shape[shape]
    if kind not in KINDS:
        raise ExportError(f"kind: expected one of {KINDS}, received {kind!r}")
    expected = (CIFAR_SIZE, CIFAR_SIZE, 3) if kind == "cifar" else \
        (IMAGENET_INPUT_SIZE, IMAGENET_INPUT_SIZE, 3)
    if shape is not None and shape != expected:
        raise ExportError(f"kind: a {kind} model takes [N, {expected[0]}, {expected[1]}, 3] "
                          f"images, but this model's input is {(None,) + shape}")
    return kind


# ----------------------------------------------------------------------------- graph pieces


def _checked(tensor, signature, argument, expected, describe, placeholder=None):
    """``tensor`` after an in-graph check that its shape matches ``expected``.

    ``expected``: a list of ints and ``None`` (any size >= 1).  A mismatch raises
    ``InvalidArgumentError``: ``<signature>: input <argument> must be <describe>;
    received shape [...]``.  The check is a ``tf.cond`` on the runtime shape, so
    the graph optimiser cannot fold it away, and what follows consumes the
    cond's output, so it never sees the bad tensor: the failing branch asserts
    and hands on ``placeholder`` (default zeros of a valid shape), which nothing
    downstream can fail on first with a less clear message.  An ``EnsureShape``
    gives the result its static shape and guards it as well.
    """
    rank = len(expected)
    shape = tf.shape(tensor, out_type=tf.int64)
    padded = tf.concat([shape, tf.zeros([rank], tf.int64)], 0)[:rank]
    ok = tf.equal(tf.size(shape), rank)
    for axis, size in enumerate(expected):
        ok = ok & (tf.equal(padded[axis], size) if size is not None
                   else tf.greater(padded[axis], 0))
    message = f"{signature}: input {argument} must be {describe}; received shape"
    if placeholder is None:
        placeholder = tf.zeros([1 if size is None else size for size in expected], tensor.dtype)

    def fail():
        check = tf.debugging.Assert(ok, [message, shape], summarize=16)
        with tf.control_dependencies([check]):
            return tf.identity(placeholder)

    return tf.ensure_shape(tf.cond(ok, lambda: tf.identity(tensor), fail), expected)


def _blank_png(size):
    """Encoded bytes of a black ``size`` x ``size`` RGB image (a valid stand-in input)."""
    return tf.io.encode_png(tf.zeros([size, size, 3], tf.uint8)).numpy()


def _outputs(logits, class_names):
    logits = tf.cast(logits, tf.float32)
    k = min(TOP_K, int(logits.shape[-1]))
    top = tf.math.top_k(logits, k=k)
    out = {
        "logits": logits,
        "probabilities": tf.nn.softmax(logits, axis=-1),
        "classes": tf.argmax(logits, axis=-1, output_type=tf.int64),
        "top5_classes": tf.cast(top.indices, tf.int64),
    }
    if class_names is not None:
        names = tf.constant(class_names, tf.string)
        out["class_name"] = tf.gather(names, out["classes"])
        out["top5_class_names"] = tf.gather(names, out["top5_classes"])
    return out


def _signatures(model, kind, class_names):
    """``({signature name: tf.function}, serve)`` for ``model``."""
    from dcnet_keras.data import imagenet_preprocessing as pre

    def run(network_input):
        return model(network_input, training=False)

    any_shape_uint8 = tf.TensorSpec(None, tf.uint8, name="images")
    any_shape_bytes = tf.TensorSpec(None, tf.string, name="image_bytes")
    any_shape_float = tf.TensorSpec(None, tf.float32, name="images")

    if kind == "cifar":
        size = CIFAR_SIZE
        cifar_shape = [None, size, size, 3]

        @tf.function(input_signature=[any_shape_uint8])
        def serving_default(images):
            images = _checked(images, "serving_default", "images", cifar_shape,
                              f"a uint8 batch of RGB images [N, {size}, {size}, 3], N >= 1")
            return _outputs(run(tf.cast(images, tf.float32)), class_names)

        def decode(encoded):
            image = pre.decode_image_rgb(encoded)
            return _checked(image, "serving_bytes", "image_bytes", [size, size, 3],
                            f"encoded {size}x{size} images (JPEG/PNG)")

        network_shape = cifar_shape
        network_describe = (f"a float32 batch of RGB images [N, {size}, {size}, 3] in 0..255, "
                            "N >= 1")
        decoded_spec = tf.TensorSpec([size, size, 3], tf.uint8)
        stand_in = _blank_png(size)
    else:
        size = IMAGENET_INPUT_SIZE
        network_shape = [None, size, size, 3]
        network_describe = (f"a float32 batch of mean-subtracted RGB images "
                            f"[N, {size}, {size}, 3], N >= 1")

        @tf.function(input_signature=[any_shape_uint8])
        def serving_default(images):
            images = _checked(images, "serving_default", "images", [None, None, None, 3],
                              "a uint8 batch of RGB images [N, H, W, 3], any N, H, W >= 1")
            return _outputs(run(pre.eval_preprocess(images)), class_names)

        def decode(encoded):
            return pre.eval_preprocess(pre.decode_image_rgb(encoded))

        decoded_spec = tf.TensorSpec([size, size, 3], tf.float32)
        stand_in = _blank_png(1)

    @tf.function(input_signature=[any_shape_bytes])
    def serving_bytes(image_bytes):
        image_bytes = _checked(image_bytes, "serving_bytes", "image_bytes", [None],
                               "a string vector [N] of encoded images (JPEG/PNG), N >= 1",
                               placeholder=tf.constant([stand_in]))
        images = tf.map_fn(decode, image_bytes, fn_output_signature=decoded_spec)
        return _outputs(run(tf.cast(images, tf.float32)), class_names)

    @tf.function(input_signature=[any_shape_float])
    def serving_preprocessed(images):
        images = _checked(images, "serving_preprocessed", "images", network_shape,
                          network_describe)
        return _outputs(run(images), class_names)

    @tf.function(input_signature=[any_shape_float])
    def serve(images):
        return run(_checked(images, "serve", "images", network_shape, network_describe))

    signatures = {"serving_default": serving_default, "serving_bytes": serving_bytes}
    if kind == "imagenet":
        signatures["serving_preprocessed"] = serving_preprocessed
    return signatures, serve


# ----------------------------------------------------------------------------- export


def _num_classes(model, kind):
    size = CIFAR_SIZE if kind == "cifar" else IMAGENET_INPUT_SIZE
    logits = model(tf.zeros([1, size, size, 3], tf.float32), training=False)
    if len(logits.shape) != 2:
        raise ExportError(f"model '{model.name}' returns shape {tuple(logits.shape)} for one "
                          "image; expected logits [N, classes]")
    return int(logits.shape[-1])


def _check_class_names(class_names, num_classes):
    if class_names is None:
        return None
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ExportError(f"class_names: the model has {num_classes} classes but "
                          f"{len(names)} names were given")
    return names


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
      kind: ``"cifar"`` or ``"imagenet"`` (``None``: from the model's input shape).
      class_names: optional ``K`` names; adds the ``class_name`` and
        ``top5_class_names`` outputs.
      allow_untrained: export even if every moving average is 0 (see
        :func:`check_exportable`).
      overwrite: replace an existing ``<out_dir>/<version>``.

    Raises :class:`ExportError` (a ``ValueError``) for an unbuilt or untrained
    model, a bad argument, or an existing version folder without ``overwrite``.
    """
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ExportError(f"version: expected a positive integer, received {version!r}")
    check_exportable(model, allow_untrained)
    kind = _model_kind(model, kind)
    class_names = _check_class_names(class_names, _num_classes(model, kind))

    out_dir = os.path.abspath(os.fspath(out_dir))
    target = os.path.join(out_dir, str(int(version)))
    if os.path.exists(target) and not overwrite:
        raise ExportError(f"out: {target} already exists (choose another version, or "
                          "overwrite=True / --overwrite)")
    os.makedirs(out_dir, exist_ok=True)

    signatures, serve = _signatures(model, kind, class_names)
    root = tf.Module()
    # Track the tf.Variables themselves: a Keras variable tracked alone is saved as a copy,
    # and TF1-style loaders (TF Serving, saved_model_cli run) would restore the copy and
    # leave the variables the functions read uninitialised.
    root.model_variables = [_tf_variable(v) for v in model.variables]
    root.serve = serve
    for name, function in signatures.items():
        setattr(root, name, function)

    # Written beside the target and renamed into place: TF Serving polls <out_dir>
    # for numeric folders and must never load a half-written one.
    staging = tempfile.mkdtemp(prefix=f".{int(version)}.partial-", dir=out_dir)
    try:
        tf.saved_model.save(root, staging, signatures=signatures)
        if os.path.exists(target):
            old = tempfile.mkdtemp(prefix=f".{int(version)}.old-", dir=out_dir)
            os.replace(target, os.path.join(old, "model"))
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return target


# ----------------------------------------------------------------------------- loading


def build_model(variant="tanh_cos", widths=None, units_per_stage=5, num_classes=None):
    """``(model, kind)``: the network ``variant`` names (``"imagenet"`` or a CIFAR variant)."""
    from dcnet_keras.models import build_cifar_resnet, build_imagenet_resnet

    kind = "imagenet" if variant == IMAGENET_VARIANT else "cifar"
    widths = tuple(widths) if widths else DEFAULT_WIDTHS[kind]
    num_classes = num_classes or DEFAULT_CLASSES[kind]
    if kind == "imagenet":
        return build_imagenet_resnet(num_classes, widths), kind
    return build_cifar_resnet(variant, num_classes, widths, units_per_stage), kind


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


def _checkpoint_prefix(path):
    """The newest checkpoint prefix at ``path`` (model_dir, checkpoint folder, or prefix)."""
    if os.path.exists(path + ".index"):
        return path
    if os.path.isdir(path):
        for folder in (os.path.join(path, "checkpoints"), path):
            if os.path.isdir(folder):
                latest = tf.train.latest_checkpoint(folder)
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


def load_training_checkpoint(path, variant="tanh_cos", widths=None, units_per_stage=5,
                             num_classes=None):
    """``(model, kind)`` restored from a checkpoint written by a training run.

    The run saves ``tf.train.Checkpoint(model=..., optimizer=..., ...)``; only
    ``model`` is read, and every weight and moving average of the built model
    must be in the checkpoint (``assert_existing_objects_matched``), so a wrong
    ``variant``/``widths``/``units_per_stage`` is an error, never a model
    with fresh weights.
    """
    prefix = _checkpoint_prefix(path)
    if not _is_object_based(prefix):
        raise ExportError(f"model: {prefix!r} is a name-based checkpoint, as the original TF1 "
                          "scripts write; pass --tf1 (load_original_checkpoint)")
    model, kind = build_model(variant, widths, units_per_stage, num_classes)
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.assert_existing_objects_matched()
        status.expect_partial()  # the optimiser, data iterator and iteration are not needed
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ExportError(
            f"model: checkpoint {prefix!r} does not fit a '{variant}' model with widths "
            f"{tuple(widths or DEFAULT_WIDTHS[kind])}"
            + ("" if kind == "imagenet" else f" and {units_per_stage} units per stage")
            + f" (check --variant, --widths, --units_per_stage): {error}") from None
    return model, kind


def load_original_checkpoint(path, variant="tanh_cos", widths=None, units_per_stage=5,
                             num_classes=None):
    """``(model, kind)`` loaded from a checkpoint of the original TF1 scripts."""
    from dcnet_keras.tf1_checkpoint import load_tf1_checkpoint

    if not (os.path.exists(path + ".index") or os.path.isdir(path)):
        raise ExportError(f"model: no checkpoint at {path!r}")
    prefix = path if os.path.exists(path + ".index") else _checkpoint_prefix(path)
    if _is_object_based(prefix):
        raise ExportError(f"model: {prefix!r} is a training checkpoint of this port, not one "
                          "of the original TF1 scripts; drop --tf1")
    model, kind = build_model(variant, widths, units_per_stage, num_classes)
    load_tf1_checkpoint(model, prefix)
    return model, kind


# ----------------------------------------------------------------------------- CLI


def _one_line(error):
    """An error message on one line (multi-line ones keep their first lines)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    shown = lines[:4]
    more = f" ... ({len(lines) - len(shown)} more)" if len(lines) > len(shown) else ""
    text = "; ".join(shown) + more
    return text if len(text) <= 2000 else text[:2000] + " ..."


def _read_class_names(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\r\n") for line in f if line.strip()]
    except OSError as error:
        raise ExportError(f"class_names: cannot read {path!r}: {error.strerror}") from None


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m dcnet_keras.export",
        description="Export a trained DCNet (a .keras file, a training checkpoint, or a "
                    "checkpoint of the original TF1 scripts) as a SavedModel for TF Serving "
                    "in OUT/VERSION/.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help=".keras file; or a model_dir / checkpoint folder / prefix of "
                                 "a training run; or (--tf1) an original TF1 checkpoint")
    p.add_argument("--out", required=True, help="base folder; the model goes to OUT/VERSION/")
    p.add_argument("--version", type=int, default=1, help="version subfolder (positive)")
    p.add_argument("--tf1", action="store_true", help="MODEL is an original TF1 checkpoint")
    p.add_argument("--variant", default="tanh_cos",
                   help="for checkpoints: a CIFAR variant (tanh_cos, ..., baseline) or "
                        "'imagenet'")
    p.add_argument("--widths", type=int, nargs="+", default=None,
                   help="for checkpoints: stage widths (default CIFAR 96 192 384, ImageNet "
                        "128 256 512 1024)")
    p.add_argument("--units_per_stage", type=int, default=5, help="for CIFAR checkpoints")
    p.add_argument("--num_classes", type=int, default=None,
                   help="for checkpoints (default CIFAR 100, ImageNet 1000)")
    p.add_argument("--kind", choices=KINDS, default=None,
                   help="cifar or imagenet signatures (default: from the model)")
    p.add_argument("--class_names", default=None,
                   help="text file, one class name per line: adds class_name outputs")
    p.add_argument("--allow_untrained", action="store_true",
                   help="export even if every moving average is 0 (an untrained model)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT/VERSION")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    from dcnet_keras.tf1_checkpoint import CheckpointMismatchError

    try:
        if args.version < 1:
            raise ExportError(f"version: expected a positive integer, received {args.version}")
        class_names = _read_class_names(args.class_names) if args.class_names else None
        if not (os.path.exists(args.model) or os.path.exists(args.model + ".index")):
            raise ExportError(f"model: nothing at {args.model!r} (expected a .keras file, a "
                              "model_dir, a checkpoint folder or a checkpoint prefix)")
        loader_args = dict(variant=args.variant, widths=args.widths,
                           units_per_stage=args.units_per_stage, num_classes=args.num_classes)
        if args.model.endswith(".keras"):
            model, kind = load_keras_file(args.model), None
        elif args.tf1:
            model, kind = load_original_checkpoint(args.model, **loader_args)
        else:
            model, kind = load_training_checkpoint(args.model, **loader_args)
        path = export_saved_model(model, args.out, args.version, args.kind or kind,
                                  class_names, args.allow_untrained, args.overwrite)
    except (ExportError, CheckpointMismatchError, ValueError, OSError) as error:
        sys.exit(f"error: {_one_line(error)}")
    print(f"exported {path}")
    return path


if __name__ == "__main__":
    main()
