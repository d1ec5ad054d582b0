"""The ImageNet network of the original: a "modified ResNet-18" (TanhConv + cosine there).

Input ``[N, 224, 224, 3]`` mean-subtracted RGB.  root 7x7/2 -> BN -> PReLU;
3x3/2 max pool SAME; 1 unit @ widths[0]; conv2 3x3/2 + BN + PReLU; 2 units;
conv3 3x3/2 + BN + PReLU; 3 units; conv4 3x3/2 + BN + PReLU; 1 unit; 7x7
average pool VALID; plain 1x1 conv to the classes (weight decay) = logits
(the top: ``avg_pool``, ``score``, ``logits``).
unit: conv-BN-PReLU, conv-BN, out = sum with the identity (no activation).
Unit convs are initialised N(0, 0.01), root, conv2-4 and score glorot
uniform.  Registered as ``imagenet_resnet18``; the original's operator is
``tanh_cos`` with ``m + 1e-6`` (the registry's ``mean_epsilon``).
"""

import keras

from dcnet_keras.layers import PlainConv2D, TF1PReLU
from dcnet_keras.models.naming import join
from dcnet_keras.models.operator_factory import (apply_norm, check_head, check_input_shape,
                                                 check_widths, logits_dtype, pool_features)
from dcnet_keras.validation import non_negative_float, positive_int

IMAGENET_WEIGHT_DECAY = 1e-4
IMAGENET_ORTHOGONALITY = 1e-5
IMAGENET_MEAN_EPSILON = 1e-6
UNITS_PER_STAGE = (1, 2, 3, 1)
IMAGE_SIZE = 224
#: the feature map is the input downsampled by 32 (root, max pool, conv2-4: stride 2, SAME).
TOTAL_STRIDE = 32
TOP = "avg_pool 7x7 VALID, score 1x1 conv, logits flatten"


def build_imagenet_resnet(conv, norm, num_classes=1000, widths=(128, 256, 512, 1024),
                          weight_decay=IMAGENET_WEIGHT_DECAY, include_top=True, pooling=None,
                          input_shape=None, name="dcnet_imagenet_resnet18"):
    """The original ImageNet DCNet with the convolution ``conv`` and the norm ``norm``.

    ``conv``/``norm`` as in :func:`~dcnet_keras.models.cifar_resnet.build_cifar_resnet`;
    ``widths``: the four stage widths (original 128, 256, 512, 1024);
    ``weight_decay``: on the score conv (the norm factory carries its own).
    Input ``[N, 224, 224, 3]`` (mean-subtracted RGB), output logits ``[N, num_classes]``,
    float32 under a mixed dtype policy (``score`` and ``logits`` are then float32 layers).

    ``include_top``: keep the top, the three layers ``avg_pool`` (7x7 VALID
    average pool), ``score`` (plain 1x1 conv to the classes) and ``logits``
    (Flatten).  ``False`` ends at the last unit's sum ``block4_unit0__add`` (no
    activation after it): the feature map ``[N, ceil(H / 32), ceil(W / 32),
    widths[3]]`` (``[N, 7, 7, widths[3]]`` at 224x224), in the compute dtype.
    ``pooling``: with ``include_top=False``, ``None``, ``"avg"`` or ``"max"``
    (global pooling to ``[N, widths[3]]``, layer ``avg_pool`` / ``max_pool``);
    must be ``None`` with the top.
    ``input_shape``: ``(height, width, channels)``, default ``(224, 224, 3)``; the
    top's 7x7 pool needs 224x224; without the top any size from 32 (``None``: any),
    any channels.
    """
    num_classes = positive_int("num_classes", num_classes)
    widths = check_widths(widths, 4)
    weight_decay = non_negative_float("weight_decay", weight_decay)
    include_top, pooling = check_head(include_top, pooling)
    input_shape = check_input_shape(input_shape, (IMAGE_SIZE, IMAGE_SIZE, 3), TOTAL_STRIDE,
                                    include_top, TOP)

    def conv_bn(x, filters, kernel_size, strides, layer_name, initializer, prelu):
        x = conv(filters, kernel_size, strides=strides, kernel_initializer=initializer,
                 name=layer_name)(x)
        x = apply_norm(norm, x, join(layer_name, "bn"))
        if prelu:
            x = TF1PReLU(name=join(layer_name, "prelu"))(x)
        return x

    def unit(x, filters, unit_name):
        unit_init = keras.initializers.RandomNormal(stddev=0.01)
        residual = conv_bn(x, filters, 3, 1, join(unit_name, "first"), unit_init, True)
        residual = conv_bn(residual, filters, 3, 1, join(unit_name, "second"), unit_init,
                           False)
        return keras.layers.Add(name=join(unit_name, "add"))([residual, x])

    images = keras.Input(shape=input_shape, name="images")
    x = conv_bn(images, widths[0], 7, 2, "root", "glorot_uniform", True)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="max_pooling")(x)
    for stage, (width, units) in enumerate(zip(widths, UNITS_PER_STAGE), start=1):
        if stage > 1:
            x = conv_bn(x, width, 3, 2, f"conv{stage}", "glorot_uniform", True)
        for index in range(units):
            x = unit(x, width, f"block{stage}_unit{index}")
    if not include_top:
        return keras.Model(images, pool_features(x, pooling), name=name)
    x = keras.layers.AveragePooling2D(7, strides=1, padding="valid", name="avg_pool")(x)
    x = PlainConv2D(num_classes, 1, padding="valid", weight_decay=weight_decay,
                    kernel_initializer="glorot_uniform", dtype=logits_dtype(), name="score")(x)
    logits = keras.layers.Flatten(dtype=logits_dtype(), name="logits")(x)
    return keras.Model(images, logits, name=name)
