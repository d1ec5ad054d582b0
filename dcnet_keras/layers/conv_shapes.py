"""Output shape of a TF-padded 2-D convolution (shared by the conv layers)."""


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
