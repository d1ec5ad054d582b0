"""The CIFAR network of the original (its class is misnamed ``VGG``): a 32-layer ResNet.

``x = (rgb - 127.5) / 128``; root 3x3 conv (width ``widths[0]``) + BN, no ReLU;
three stages of ``units_per_stage`` residual units (the first unit of stages 2
and 3 has stride 2); unit = conv(s)-BN-ReLU, conv-BN, shortcut = identity or a
plain 1x1 conv (stride s, weight decay) + BN, out = ReLU(sum); head (the
*top*) = 8x8 average pool (VALID) and a plain 1x1 conv to the classes (weight
decay) = logits ``[N, num_classes]``.  Registered as ``cifar_resnet32``.
"""

import keras

from dcnet_keras.layers import PlainConv2D
from dcnet_keras.models.naming import join
from dcnet_keras.models.operator_factory import (apply_norm, check_head, check_input_shape,
                                                 check_widths, logits_dtype, pool_features)
from dcnet_keras.validation import non_negative_float, positive_int

CIFAR_WEIGHT_DECAY = 5e-4
CIFAR_ORTHOGONALITY = 1e-5
IMAGE_SIZE = 32
#: the feature map is the input downsampled by 4 (stages 2 and 3 have stride 2, SAME).
TOTAL_STRIDE = 4
TOP = "avg_pool 8x8 VALID, score 1x1 conv, logits flatten"


def build_cifar_resnet(conv, norm, num_classes=100, widths=(96, 192, 384), units_per_stage=5,
                       weight_decay=CIFAR_WEIGHT_DECAY, include_top=True, pooling=None,
                       input_shape=None, name="dcnet_cifar_resnet32"):
    """The original CIFAR ResNet-32 with the convolution ``conv`` and the norm ``norm``.

    Args:
      conv: factory of the root and unit convolutions (see
        :mod:`dcnet_keras.models.operator_factory`).
      norm: factory of the batch norms, or ``None`` (no batch norm anywhere, the
        shortcut's included, as ``linear_sqcos_wo_bn``).
      num_classes: logits per image.
      widths: the three stage widths (original 96, 192, 384).
      units_per_stage: residual units per stage (original 5).
      weight_decay: TF1 ``l2_regularizer`` scale of the plain shortcut and score convs.
      include_top: keep the top, the three layers ``avg_pool`` (8x8 VALID average
        pool), ``score`` (plain 1x1 conv to the classes, float32) and ``logits``
        (Flatten, float32).  ``False`` ends at the last unit's ReLU
        (``block3_unit<units_per_stage - 1>__relu``): the feature map
        ``[N, ceil(H / 4), ceil(W / 4), widths[2]]`` (``[N, 8, 8, widths[2]]`` at 32x32).
      pooling: with ``include_top=False``, ``None`` (the feature map), ``"avg"``
        or ``"max"`` (global pooling over H, W to ``[N, widths[2]]``, layer
        ``avg_pool`` / ``max_pool``); must be ``None`` with the top.
      input_shape: ``(height, width, channels)``, default ``(32, 32, 3)``; the top's
        8x8 pool needs 32x32; without the top any size from 4 (``None``: any) and
        any channel count.

    Input ``[N, 32, 32, 3]`` RGB in 0..255; output logits ``[N, num_classes]``, float32
    under a mixed dtype policy (the ``score`` and ``logits`` layers are then float32, as
    ``keras.applications``' classifier layers); features keep the compute dtype.
    """
    num_classes = positive_int("num_classes", num_classes)
    widths = check_widths(widths, 3)
    units_per_stage = positive_int("units_per_stage", units_per_stage)
    weight_decay = non_negative_float("weight_decay", weight_decay)
    include_top, pooling = check_head(include_top, pooling)
    input_shape = check_input_shape(input_shape, (IMAGE_SIZE, IMAGE_SIZE, 3), TOTAL_STRIDE,
                                    include_top, TOP)

    def conv_bn(x, filters, kernel_size, strides, layer_name):
        x = conv(filters, kernel_size, strides=strides, name=layer_name)(x)
        return apply_norm(norm, x, join(layer_name, "bn"))

    def unit(x, filters, strides, unit_name):
        residual = conv_bn(x, filters, 3, strides, join(unit_name, "first"))
        residual = keras.layers.ReLU(name=join(unit_name, "first", "relu"))(residual)
        residual = conv_bn(residual, filters, 3, 1, join(unit_name, "second"))
        if x.shape[-1] == filters and strides == 1:
            shortcut = x
        else:
            shortcut_name = join(unit_name, "shortcut")
            shortcut = PlainConv2D(filters, 1, strides=strides, weight_decay=weight_decay,
                                   name=shortcut_name)(x)
            shortcut = apply_norm(norm, shortcut, join(shortcut_name, "bn"))
        out = keras.layers.Add(name=join(unit_name, "add"))([residual, shortcut])
        return keras.layers.ReLU(name=join(unit_name, "relu"))(out)

    images = keras.Input(shape=input_shape, name="images")
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.5 / 128.0, name="rescale")(images)
    x = conv_bn(x, widths[0], 3, 1, "root")
    for stage, width in enumerate(widths, start=1):
        for index in range(units_per_stage):
            strides = 2 if stage > 1 and index == 0 else 1
            x = unit(x, width, strides, f"block{stage}_unit{index}")
    if not include_top:
        return keras.Model(images, pool_features(x, pooling), name=name)
    x = keras.layers.AveragePooling2D(8, strides=1, padding="valid", name="avg_pool")(x)
    x = PlainConv2D(num_classes, 1, padding="valid", weight_decay=weight_decay,
                    dtype=logits_dtype(), name="score")(x)
    logits = keras.layers.Flatten(dtype=logits_dtype(), name="logits")(x)
    return keras.Model(images, logits, name=name)
