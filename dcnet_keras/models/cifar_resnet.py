"""The CIFAR-100 network of the original (its class is misnamed ``VGG``): a 32-layer ResNet.

``x = (rgb - 127.5) / 128``; root 3x3 conv (width ``widths[0]``) + BN, no ReLU;
three stages of ``units_per_stage`` residual units (the first unit of stages 2
and 3 has stride 2); unit = conv(s)-BN-ReLU, conv-BN, shortcut = identity or a
plain 1x1 conv (stride s, weight decay) + BN, out = ReLU(sum); head = 8x8
average pool (VALID) and a plain 1x1 conv to the classes (weight decay) =
logits ``[N, num_classes]``.
"""

import keras

from dcnet_keras.layers import DecoupledConv2D, PlainConv2D, TF1BatchNormalization
from dcnet_keras.models.naming import join
from dcnet_keras.validation import non_negative_float, positive_int
from dcnet_keras.variants import parse_variant

CIFAR_WEIGHT_DECAY = 5e-4
CIFAR_ORTHOGONALITY = 1e-5
IMAGE_SIZE = 32


def _check_widths(widths, count):
    """``count`` positive integers, as a tuple; else a ValueError naming ``widths``."""
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


class _CifarLayers:
    """Makes the layers of one CIFAR network variant."""

    def __init__(self, variant, weight_decay, orthogonality, zero_debias, patch_norm):
        self.variant = variant
        self.patch_norm = patch_norm
        self.weight_decay = weight_decay
        self.orthogonality = orthogonality
        self.zero_debias = zero_debias

    def conv(self, x, filters, kernel_size, strides, name):
        """Root/unit convolution: decoupled, or plain with weight decay for baseline."""
        if self.variant.decoupled:
            return DecoupledConv2D(
                filters, kernel_size, strides=strides, magnitude=self.variant.magnitude,
                angular=self.variant.angular, orthogonality=self.orthogonality,
                zero_debias=self.zero_debias, patch_norm=self.patch_norm, name=name)(x)
        return PlainConv2D(filters, kernel_size, strides=strides,
                           weight_decay=self.weight_decay, name=name)(x)

    def bn(self, x, conv_name):
        if not self.variant.batch_norm:
            return x
        return TF1BatchNormalization(weight_decay=self.weight_decay,
                                     zero_debias=self.zero_debias,
                                     name=join(conv_name, "bn"))(x)

    def conv_bn(self, x, filters, kernel_size, strides, name):
        return self.bn(self.conv(x, filters, kernel_size, strides, name), name)

    def unit(self, x, filters, strides, name):
        residual = self.conv_bn(x, filters, 3, strides, join(name, "first"))
        residual = keras.layers.ReLU(name=join(name, "first", "relu"))(residual)
        residual = self.conv_bn(residual, filters, 3, 1, join(name, "second"))
        if x.shape[-1] == filters and strides == 1:
            shortcut = x
        else:
            shortcut_name = join(name, "shortcut")
            shortcut = PlainConv2D(filters, 1, strides=strides, weight_decay=self.weight_decay,
                                   name=shortcut_name)(x)
            shortcut = self.bn(shortcut, shortcut_name)
        out = keras.layers.Add(name=join(name, "add"))([residual, shortcut])
        return keras.layers.ReLU(name=join(name, "relu"))(out)


def build_cifar_resnet(variant="tanh_cos", num_classes=100, widths=(96, 192, 384),
                       units_per_stage=5, batch_norm=None, weight_decay=CIFAR_WEIGHT_DECAY,
                       orthogonality=CIFAR_ORTHOGONALITY, zero_debias=False, patch_norm="box",
                       name=None):
    """The original CIFAR-100 DCNet (or ``baseline``) as a functional Keras model.

    Args:
      variant: ``tanh_cos``, ``ball_cos``, ``seg_cos``, ``linear_cos``,
        ``linear_sqcos_wo_bn``, any ``<magnitude>_<angular>`` pair (e.g.
        ``log_sqcos``, optionally ``_wo_bn``), or ``baseline`` (plain convolutions
        with weight decay everywhere, no orthogonality).
      num_classes: logits per image.
      widths: the three stage widths (original 96, 192, 384).
      units_per_stage: residual units per stage (original 5).
      batch_norm: ``False`` drops every batch norm (as ``linear_sqcos_wo_bn``);
        ``None`` follows the variant name.
      weight_decay: TF1 ``l2_regularizer`` scale on plain convs and BN gamma/beta.
      orthogonality: strength of the orthogonality term on decoupled filters.
      zero_debias: zero-debias the moving averages (the original does not).
      patch_norm: ``"box"`` (cheap, default) or ``"ones_filter"`` (the original's
        op, for bit-level reproduction of its float32 activations); see
        :class:`~dcnet_keras.layers.DecoupledConv2D`.

    Input ``[N, 32, 32, 3]`` RGB in 0..255; output logits ``[N, num_classes]``.
    """
    spec = parse_variant(variant, batch_norm)
    num_classes = positive_int("num_classes", num_classes)
    widths = _check_widths(widths, 3)
    units_per_stage = positive_int("units_per_stage", units_per_stage)
    make = _CifarLayers(spec, non_negative_float("weight_decay", weight_decay),
                        non_negative_float("orthogonality", orthogonality), bool(zero_debias),
                        patch_norm)

    images = keras.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="images")
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.5 / 128.0, name="rescale")(images)
    x = make.conv_bn(x, widths[0], 3, 1, "root")
    for stage, width in enumerate(widths, start=1):
        for unit in range(units_per_stage):
            strides = 2 if stage > 1 and unit == 0 else 1
            x = make.unit(x, width, strides, f"block{stage}_unit{unit}")
    x = keras.layers.AveragePooling2D(8, strides=1, padding="valid", name="avg_pool")(x)
    x = PlainConv2D(num_classes, 1, padding="valid", weight_decay=make.weight_decay,
                    name="score")(x)
    logits = keras.layers.Flatten(name="logits")(x)
    return keras.Model(images, logits, name=name or f"dcnet_cifar_{spec.name}")
