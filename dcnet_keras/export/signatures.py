"""The serving signatures of an exported DCNet and the outputs they return (TensorFlow only).

Signatures (inference mode: moving averages, never batch statistics; any
batch size N >= 1):

- ``serving_default``, input ``images``: uint8 RGB ``[N, 32, 32, 3]`` (kind
  ``cifar``), or uint8 RGB ``[N, H, W, 3]`` of any size (kind ``imagenet``: the
  original's evaluation preprocessing runs in the graph, see
  :mod:`dcnet_keras.data.imagenet_preprocessing`);
- ``serving_bytes``, input ``image_bytes``: string ``[N]`` of encoded JPEG/PNG
  images (``cifar``: 32x32 ones; ``imagenet``: any size, preprocessed as above);
- ``serving_preprocessed`` (``imagenet`` only), input ``images``: float32
  ``[N, 224, 224, 3]``, mean-subtracted: the network's own input.

Every signature returns :func:`outputs`: ``logits`` (float32 ``[N, K]``),
``probabilities`` (softmax of the logits), ``classes`` (int64 ``[N]``, the arg
max), ``top5_classes`` (int64 ``[N, min(5, K)]``, best first), and with class
names ``class_name`` (string ``[N]``) and ``top5_class_names``.  Beside them,
``serve`` (not a signature, as ``model.export`` writes it): the model's own
float32 input -> logits.

The signatures' input shapes are left open (dtype only) and checked in the
graph by :func:`checked`: with a static shape in the signature, TensorFlow's
graph optimiser folds a rank check away, and a tensor of the wrong rank
reaching the convolutions aborts the process (oneDNN ``Check failed``).
"""

import tensorflow as tf

from dcnet_keras.models.registry import INPUT_KINDS

KINDS = tuple(INPUT_KINDS)
TOP_K = 5


def input_size(kind):
    """The network's input height (= width) for ``kind``: 32 (cifar), 224 (imagenet)."""
    return INPUT_KINDS[kind][0]


def checked(tensor, signature, argument, expected, describe, placeholder=None):
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


def outputs(logits, class_names=None):
    """The output dict of every signature, from ``logits [N, K]`` (see the module doc)."""
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


def _blank_png(size):
    """Encoded bytes of a black ``size`` x ``size`` RGB image (a valid stand-in input)."""
    return tf.io.encode_png(tf.zeros([size, size, 3], tf.uint8)).numpy()


def serving_functions(model, kind, class_names=None):
    """``({signature name: tf.function}, serve)`` for ``model`` of input ``kind``."""
    from dcnet_keras.data import imagenet_preprocessing as pre

    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, received {kind!r}")

    def run(network_input):
        return model(network_input, training=False)

    any_shape_uint8 = tf.TensorSpec(None, tf.uint8, name="images")
    any_shape_bytes = tf.TensorSpec(None, tf.string, name="image_bytes")
    any_shape_float = tf.TensorSpec(None, tf.float32, name="images")
    size = input_size(kind)
    network_shape = [None, size, size, 3]

    if kind == "cifar":
        @tf.function(input_signature=[any_shape_uint8])
        def serving_default(images):
            images = checked(images, "serving_default", "images", network_shape,
                             f"a uint8 batch of RGB images [N, {size}, {size}, 3], N >= 1")
            return outputs(run(tf.cast(images, tf.float32)), class_names)

        def decode(encoded):
            image = pre.decode_image_rgb(encoded)
            return checked(image, "serving_bytes", "image_bytes", [size, size, 3],
                           f"encoded {size}x{size} images (JPEG/PNG)")

        network_describe = (f"a float32 batch of RGB images [N, {size}, {size}, 3] in 0..255, "
                            "N >= 1")
        decoded_spec = tf.TensorSpec([size, size, 3], tf.uint8)
        stand_in = _blank_png(size)
    else:
        network_describe = (f"a float32 batch of mean-subtracted RGB images "
                            f"[N, {size}, {size}, 3], N >= 1")

        @tf.function(input_signature=[any_shape_uint8])
        def serving_default(images):
            images = checked(images, "serving_default", "images", [None, None, None, 3],
                             "a uint8 batch of RGB images [N, H, W, 3], any N, H, W >= 1")
            return outputs(run(pre.eval_preprocess(images)), class_names)

        def decode(encoded):
            return pre.eval_preprocess(pre.decode_image_rgb(encoded))

        decoded_spec = tf.TensorSpec([size, size, 3], tf.float32)
        stand_in = _blank_png(1)

    @tf.function(input_signature=[any_shape_bytes])
    def serving_bytes(image_bytes):
        image_bytes = checked(image_bytes, "serving_bytes", "image_bytes", [None],
                              "a string vector [N] of encoded images (JPEG/PNG), N >= 1",
                              placeholder=tf.constant([stand_in]))
        images = tf.map_fn(decode, image_bytes, fn_output_signature=decoded_spec)
        return outputs(run(tf.cast(images, tf.float32)), class_names)

    @tf.function(input_signature=[any_shape_float])
    def serving_preprocessed(images):
        images = checked(images, "serving_preprocessed", "images", network_shape,
                         network_describe)
        return outputs(run(images), class_names)

    @tf.function(input_signature=[any_shape_float])
    def serve(images):
        return tf.cast(run(checked(images, "serve", "images", network_shape, network_describe)),
                       tf.float32)

    signatures = {"serving_default": serving_default, "serving_bytes": serving_bytes}
    if kind == "imagenet":
        signatures["serving_preprocessed"] = serving_preprocessed
    return signatures, serve
