"""CNN-9, the plain network of the paper's Tables 2-3 (the authors' SphereNet code).

``x = (rgb - 127.5) / 128``; three stages of three 3x3 SAME convs of widths
``widths`` (128, 192, 256), each followed by BN and ReLU; a 2x2 stride-2 SAME
max pool after each stage (32 -> 16 -> 8 -> 4); ``fc6``: a 4x4 VALID conv to
``fc_width`` (256), no BN, no ReLU; ``score``: a plain 1x1 conv to the classes
with weight decay.  The nine convs and fc6 are the network's operator
(``conv``); ``norm=None`` drops the batch norms (Table 2) and ``relu=False``
the ReLUs (Table 3).  Layer names follow the SphereNet scopes: ``conv1_0`` ..
``conv3_2``, ``fc6``, ``score``.  The top (``include_top``) is fc6, score and
the flatten, as VGG's fully connected layers are in ``keras.applications``.
Registered as ``cnn9``.
"""

import keras

from dcnet_keras.layers import PlainConv2D
from dcnet_keras.models.naming import join
from dcnet_keras.models.operator_factory import (apply_norm, check_head, check_input_shape,
                                                 check_widths, logits_dtype, pool_features)
from dcnet_keras.validation import non_negative_float, positive_int

CNN9_WEIGHT_DECAY = 5e-4
CNN9_ORTHOGONALITY = 1e-5
CONVS_PER_STAGE = 3
IMAGE_SIZE = 32
#: the feature map is the input downsampled by 8 (three 2x2 stride-2 SAME max pools).
TOTAL_STRIDE = 8
TOP = "fc6 4x4 VALID conv, score 1x1 conv, logits flatten"


def build_cnn9(conv, norm, num_classes=10, widths=(128, 192, 256), fc_width=256, relu=True,
               weight_decay=CNN9_WEIGHT_DECAY, include_top=True, pooling=None, input_shape=None,
               name="dcnet_cnn9"):
    """CNN-9 with the convolution ``conv`` and the norm ``norm`` (``None``: no BN).

    Input ``[N, 32, 32, 3]`` RGB in 0..255; output logits ``[N, num_classes]``, float32
    under a mixed dtype policy (``score`` and ``logits`` are float32 layers, as
    ``keras.applications``' classifiers).
    ``widths``: the three stage widths; ``fc_width``: fc6's output channels;
    ``relu``: a ReLU after every stage conv (after its BN); ``weight_decay``:
    on the plain score conv (the conv and norm factories carry their own).

    ``include_top``: keep the top, the three layers ``fc6`` (the operator's 4x4
    VALID conv to ``fc_width``), ``score`` (plain 1x1 conv to the classes) and
    ``logits`` (Flatten).  ``False`` ends at ``pool3``: the feature map
    ``[N, ceil(H / 8), ceil(W / 8), widths[2]]`` (``[N, 4, 4, widths[2]]`` at
    32x32), in the compute dtype, and ``fc_width`` is unused.
    ``pooling``: with ``include_top=False``, ``None`` (the feature map), ``"avg"``
    or ``"max"`` (global pooling to ``[N, widths[2]]``, layer ``avg_pool`` /
    ``max_pool``); must be ``None`` with the top.
    ``input_shape``: ``(height, width, channels)``, default ``(32, 32, 3)``; fc6
    needs 32x32; without the top any size from 8 (``None``: any), any channels.
    """
    num_classes = positive_int("num_classes", num_classes)
    widths = check_widths(widths, 3)
    fc_width = positive_int("fc_width", fc_width)
    weight_decay = non_negative_float("weight_decay", weight_decay)
    relu = bool(relu)
    include_top, pooling = check_head(include_top, pooling)
    input_shape = check_input_shape(input_shape, (IMAGE_SIZE, IMAGE_SIZE, 3), TOTAL_STRIDE,
                                    include_top, TOP)

    images = keras.Input(shape=input_shape, name="images")
    x = keras.layers.Rescaling(1.0 / 128.0, offset=-127.5 / 128.0, name="rescale")(images)
    for stage, width in enumerate(widths, start=1):
        for index in range(CONVS_PER_STAGE):
            layer_name = f"conv{stage}_{index}"
            x = conv(width, 3, strides=1, padding="same", name=layer_name)(x)
            x = apply_norm(norm, x, join(layer_name, "bn"))
            if relu:
                x = keras.layers.ReLU(name=join(layer_name, "relu"))(x)
        x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{stage}")(x)
    if not include_top:
        return keras.Model(images, pool_features(x, pooling), name=name)
    x = conv(fc_width, 4, strides=1, padding="valid", name="fc6")(x)
    x = PlainConv2D(num_classes, 1, padding="valid", weight_decay=weight_decay,
                    dtype=logits_dtype(), name="score")(x)
    logits = keras.layers.Flatten(dtype=logits_dtype(), name="logits")(x)
    return keras.Model(images, logits, name=name)
