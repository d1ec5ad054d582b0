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
"""

import functools

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
