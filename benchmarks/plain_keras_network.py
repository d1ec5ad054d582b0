"""Plain Keras networks of the same shapes as ours: the speed reference of the benchmark.

Built from stock layers only: ``keras.layers.Conv2D(use_bias=False)``,
``keras.layers.BatchNormalization`` (momentum 0.999, epsilon 1e-3, as
``TF1BatchNormalization``) and ``keras.layers.ReLU``, with the same input
rescaling, shortcut structure, pooling and 1x1 score convolution as
:mod:`dcnet_keras.models.cifar_resnet` and :mod:`dcnet_keras.models.cnn9`.
Every convolution filter and every batch-norm gamma / beta carries
``keras.regularizers.L2(weight_decay / 2)`` (= TF1 ``wd * sum(w^2) / 2``), so
the model's ``losses`` hold a weight-decay term as our ``baseline`` does.

``batch_norm=False`` drops every batch norm (the shape of ``*_wo_bn`` models);
the benchmark's plain reference keeps them.
"""

import keras

CIFAR_WEIGHT_DECAY = 5e-4
IMAGE_SHAPE = (32, 32, 3)


def _decay(weight_decay):
    """``L2(wd / 2)``: Keras's ``l * sum(w^2)`` with ``l = wd / 2``; ``None`` for 0."""
    return keras.regularizers.L2(weight_decay / 2.0) if weight_decay else None


def _conv(filters, kernel_size, strides, padding, weight_decay, name, dtype=None):
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                               use_bias=False, kernel_initializer="he_normal",
                               kernel_regularizer=_decay(weight_decay), name=name, dtype=dtype)


def _norm(x, batch_norm, weight_decay, name):
    """``BatchNormalization(x)`` with the original's momentum and epsilon, or ``x``."""
    if not batch_norm:
        return x
    return keras.layers.BatchNormalization(momentum=0.999, epsilon=1e-3,
                                           gamma_regularizer=_decay(weight_decay),
                                           beta_regularizer=_decay(weight_decay),
                                           name=name)(x)


def _rescaled_input():
    """``(images, (images - 127.5) / 128)``, the networks' first step."""
    images = keras.Input(shape=IMAGE_SHAPE, name="images")
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.5 / 128.0, name="rescale")(images)
    return images, x


def _score(x, num_classes, weight_decay):
    """The 1x1 VALID score conv to ``num_classes`` and the flatten to ``[N, num_classes]``,
    both float32 under a mixed policy (float32 logits, as our networks give)."""
    x = _conv(num_classes, 1, 1, "valid", weight_decay, "score", dtype="float32")(x)
    return keras.layers.Flatten(name="logits", dtype="float32")(x)


def plain_cifar_resnet(num_classes=100, widths=(96, 192, 384), units_per_stage=5,
                       batch_norm=True, weight_decay=CIFAR_WEIGHT_DECAY,
                       name="plain_keras_cifar_resnet32"):
    """ResNet-32 of ``build_cifar_resnet``'s shape from stock Keras layers.

    Root 3x3 conv (``widths[0]``) + BN, no ReLU; three stages of
    ``units_per_stage`` units (stride 2 in the first unit of stages 2 and 3);
    unit: conv(s)-BN-ReLU, conv-BN, shortcut identity or 1x1 conv(s) + BN,
    ReLU(sum); 8x8 VALID average pool; 1x1 score conv; logits ``[N, num_classes]``.
    """

    def conv_bn(x, filters, kernel_size, strides, layer_name):
        x = _conv(filters, kernel_size, strides, "same", weight_decay, layer_name)(x)
        return _norm(x, batch_norm, weight_decay, f"{layer_name}_bn")

    def unit(x, filters, strides, unit_name):
        residual = conv_bn(x, filters, 3, strides, f"{unit_name}_first")
        residual = keras.layers.ReLU(name=f"{unit_name}_first_relu")(residual)
        residual = conv_bn(residual, filters, 3, 1, f"{unit_name}_second")
        if x.shape[-1] == filters and strides == 1:
            shortcut = x
        else:
            shortcut = conv_bn(x, filters, 1, strides, f"{unit_name}_shortcut")
        out = keras.layers.Add(name=f"{unit_name}_add")([residual, shortcut])
        return keras.layers.ReLU(name=f"{unit_name}_relu")(out)

    images, x = _rescaled_input()
    x = conv_bn(x, widths[0], 3, 1, "root")
    for stage, width in enumerate(widths, start=1):
        for index in range(units_per_stage):
            strides = 2 if stage > 1 and index == 0 else 1
            x = unit(x, width, strides, f"block{stage}_unit{index}")
    x = keras.layers.AveragePooling2D(8, strides=1, padding="valid", name="avg_pool")(x)
    return keras.Model(images, _score(x, num_classes, weight_decay), name=name)


def plain_cnn9(num_classes=10, widths=(128, 192, 256), fc_width=256, relu=True,
               batch_norm=True, weight_decay=CIFAR_WEIGHT_DECAY, name="plain_keras_cnn9"):
    """CNN-9 of ``build_cnn9``'s shape from stock Keras layers.

    Three stages of three 3x3 SAME convs (``widths``), each + BN (+ ReLU when
    ``relu``); a 2x2 stride-2 SAME max pool after each stage; ``fc6``: 4x4 VALID
    conv to ``fc_width``, no BN, no ReLU; 1x1 score conv; logits ``[N, num_classes]``.
    """
    images, x = _rescaled_input()
    for stage, width in enumerate(widths, start=1):
        for index in range(3):
            layer_name = f"conv{stage}_{index}"
            x = _conv(width, 3, 1, "same", weight_decay, layer_name)(x)
            x = _norm(x, batch_norm, weight_decay, f"{layer_name}_bn")
            if relu:
                x = keras.layers.ReLU(name=f"{layer_name}_relu")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{stage}")(x)
    x = _conv(fc_width, 4, 1, "valid", weight_decay, "fc6")(x)
    return keras.Model(images, _score(x, num_classes, weight_decay), name=name)


#: the plain builder of each network the benchmark times.
PLAIN_BUILDERS = {"cifar_resnet32": plain_cifar_resnet, "cnn9": plain_cnn9}


def build_plain_network(network, num_classes, batch_norm=True, **options):
    """The plain Keras model of ``network`` (``cifar_resnet32`` or ``cnn9``) with its
    size ``options`` (``widths``, ``units_per_stage`` / ``fc_width``, ``relu``)."""
    if network not in PLAIN_BUILDERS:
        raise ValueError(f"network: no plain Keras reference for {network!r}; "
                         f"one of {sorted(PLAIN_BUILDERS)}")
    return PLAIN_BUILDERS[network](num_classes=num_classes, batch_norm=batch_norm, **options)
