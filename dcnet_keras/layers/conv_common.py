"""What the two convolution layers share: the kernel weight and the output shape."""

import keras

from dcnet_keras.validation import image_input_shape


def build_kernel(layer, input_shape, regularizer, autocast=True):
    """Check the NHWC ``input_shape``, fix the layer's ``input_spec`` and add its
    ``kernel`` ``[kh, kw, Cin, filters]`` (checkpoint name ``<scope>/filter``);
    ``autocast=False`` keeps its float32 value under a mixed policy."""
    channels = image_input_shape(layer.name, input_shape)
    layer.input_spec = keras.InputSpec(ndim=4, axes={-1: channels})
    layer.kernel = layer.add_weight(
        name="kernel", shape=layer.kernel_size + (channels, layer.filters),
        initializer=layer.kernel_initializer, regularizer=regularizer,
        autocast=autocast)


def conv_output_shape(input_shape, filters, kernel_size, strides, padding):
    """``[N, H', W', filters]``: SAME ``ceil(H / s)``, VALID ``floor((H - k) / s) + 1``."""
    spatial = []
    for size, k, s in zip(input_shape[1:3], kernel_size, strides):
        if size is None:
            spatial.append(None)
        elif padding == "same":
            spatial.append(-(-size // s))
        else:
            spatial.append(max((size - k) // s + 1, 0))
    return (input_shape[0], spatial[0], spatial[1], filters)
