"""The operator and the norm a network is built with, as layer factories.

A network builder never chooses its convolution: it calls ``conv(filters,
kernel_size, strides=..., padding=..., name=..., kernel_initializer=...)`` and
``norm(name=...)`` (``norm`` is ``None`` for a network without batch norm), in
the manner of B-cos's ``conv_layer=partial(BcosConv2d, ...)``.  So a new
operator, or a new network, never edits another one::

    conv = functools.partial(DecoupledConv2D, magnitude="log", angular="sigmoid")
    model = build_cnn9(conv, norm=None, num_classes=10)

:func:`conv_factory` and :func:`norm_factory` make the factories the variant
names mean (``tanh_cos``, ``baseline``, ...); only
:func:`dcnet_keras.models.build_model` calls them.

The builders' ``keras.applications`` arguments are checked here too:
:func:`check_head` (``include_top``, ``pooling``), :func:`check_input_shape`
(``input_shape``) and :func:`pool_features` (the ``pooling`` layer).
"""

import functools
import numbers

import keras

from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization
from dcnet_keras.validation import non_negative_float
from dcnet_keras.variants import Variant, parse_variant


def conv_factory(variant, weight_decay, orthogonality, zero_debias=False, patch_norm="box",
                 mean_epsilon=0.0, conv_options=None):
    """The convolution ``variant`` names, as a factory.

    Decoupled variants give ``DecoupledConv2D(magnitude, angular, orthogonality,
    zero_debias, patch_norm, mean_epsilon, **conv_options)`` (no weight decay on
    the filter, as the original); ``baseline`` gives ``PlainConv2D`` with
    ``weight_decay`` on every filter and no orthogonality term.
    ``conv_options`` are further ``DecoupledConv2D`` arguments (``alpha``,
    ``radius``, ``sigmoid_k``, ``weighted``, ...).
    """
    spec = variant if isinstance(variant, Variant) else parse_variant(variant)
    options = dict(conv_options or {})
    if not spec.decoupled:
        if options:
            raise ValueError(f"conv_options: {sorted(options)} apply to decoupled operators; "
                             f"variant {spec.name!r} uses plain convolutions")
        return functools.partial(PlainConv2D,
                                 weight_decay=non_negative_float("weight_decay", weight_decay))
    for fixed in ("magnitude", "angular", "filters", "kernel_size", "strides", "name"):
        if fixed in options:
            raise ValueError(f"conv_options: {fixed!r} is set by the variant and the network, "
                             f"received {options[fixed]!r}")
    return functools.partial(
        DecoupledConv2D, magnitude=spec.magnitude, angular=spec.angular,
        orthogonality=non_negative_float("orthogonality", orthogonality),
        zero_debias=bool(zero_debias), patch_norm=patch_norm, mean_epsilon=mean_epsilon,
        **options)


def norm_factory(batch_norm, weight_decay, zero_debias=False):
    """``TF1BatchNormalization(weight_decay, zero_debias)`` as a factory, or ``None``
    when ``batch_norm`` is false (the network is then built without batch norm)."""
    if not batch_norm:
        return None
    return functools.partial(TF1BatchNormalization,
                             weight_decay=non_negative_float("weight_decay", weight_decay),
                             zero_debias=bool(zero_debias))


def logits_dtype():
    """The dtype policy of a network's ``score`` and ``logits`` layers: ``"float32"`` under
    a mixed policy (float16 / bfloat16 compute), so that the logits are float32 as in
    ``keras.applications``; else ``None``, the global policy (float32, or float64 when
    ``floatx`` is)."""
    compute = keras.config.dtype_policy().compute_dtype
    return "float32" if compute in ("float16", "bfloat16") else None


def apply_norm(norm, x, name):
    """``norm(name=name)(x)``, or ``x`` itself for a network without batch norm."""
    return x if norm is None else norm(name=name)(x)


def check_widths(widths, count):
    """``count`` positive integers, as a tuple; else a ValueError naming ``widths``."""
    from dcnet_keras.validation import positive_int

    try:
        values = tuple(widths)
    except TypeError:
        values = ()
    try:
        if len(values) != count:
            raise ValueError
        return tuple(positive_int("widths", w) for w in values)
    except ValueError:
        raise ValueError(
            f"widths: expected {count} positive integers, received {widths!r}") from None


#: what ``pooling`` may be: none (the feature map), global average, global max.
POOLINGS = (None, "avg", "max")


def check_head(include_top, pooling):
    """``(include_top, pooling)`` checked: ``include_top`` a bool, ``pooling`` one of
    :data:`POOLINGS` and ``None`` when ``include_top`` (the top has its own pooling);
    else a ValueError naming the argument and the value."""
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top: expected True or False, received {include_top!r}")
    if not (pooling is None or (isinstance(pooling, str) and pooling in POOLINGS)):
        raise ValueError(f"pooling: expected None, 'avg' or 'max', received {pooling!r}")
    if include_top and pooling is not None:
        raise ValueError(f"pooling: applies only with include_top=False (the top pools "
                         f"itself), received {pooling!r} with include_top=True")
    return include_top, pooling


def _dimension(value):
    """``value`` as a positive int, ``None`` for an unknown size; else ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value > 0:
        return int(value)
    raise ValueError


def looks_channels_first(shape):
    """Whether ``(a, b, c)`` reads as ``(channels, height, width)``: ``a`` an image's channel
    count (1, 3 or 4) and ``c`` not."""
    return shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4)


def check_input_shape(input_shape, default, min_size, include_top, top):
    """The ``(height, width, channels)`` a builder is to take, checked.

    ``None`` gives ``default`` (the network's own).  Otherwise three entries,
    channels last and known (any positive count), height and width positive or
    ``None`` (any size) and at least ``min_size`` (the network's total stride);
    a shape that looks channels-first (:func:`looks_channels_first`, e.g.
    ``(3, 32, 32)``) is refused.  With ``include_top`` the height and width must
    be ``default``'s: ``top`` (what the top holds, for the message) needs that size.
    Any other shape is a ValueError naming ``input_shape`` and the value.
    """
    if input_shape is None:
        return tuple(default)
    try:
        shape = tuple(_dimension(d) for d in input_shape)
        if len(shape) != 3 or shape[-1] is None:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"input_shape: expected (height, width, channels) with positive "
                         f"sizes (height and width may be None), received {input_shape!r}"
                         ) from None
    if looks_channels_first(shape):
        raise ValueError(f"input_shape: the networks take channels last, (height, width, "
                         f"channels); received {input_shape!r}, which reads as channels "
                         f"first")
    if any(d is not None and d < min_size for d in shape[:2]):
        raise ValueError(f"input_shape: height and width must be at least {min_size} (or "
                         f"None), received {input_shape!r}")
    if include_top and shape[:2] != tuple(default[:2]):
        raise ValueError(f"input_shape: the top ({top}) needs {default[0]}x{default[1]} "
                         f"inputs (use include_top=False for other sizes), received "
                         f"{input_shape!r}")
    return shape


def pool_features(x, pooling):
    """``x`` ``[N, H, W, C]`` pooled over H, W to ``[N, C]`` by ``pooling``: ``"avg"``
    (``GlobalAveragePooling2D`` named ``avg_pool``), ``"max"``
    (``GlobalMaxPooling2D`` named ``max_pool``) or ``None`` (``x`` itself).  The pooled
    features keep the compute dtype, as ``keras.applications``'."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x
