"""Argument checks shared by the layers and builders: clear ``ValueError``s."""

import numbers


def choice(argument, value, allowed):
    """``value`` if it is one of ``allowed``, else a ValueError naming both."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"{argument}: expected one of {', '.join(repr(a) for a in allowed)}, "
            f"received {value!r}")
    return value


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(argument, value):
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{argument}: expected a positive integer, received {value!r}")
    return int(value)


def positive_float(argument, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not number > 0:
        raise ValueError(f"{argument}: expected a positive number, received {value!r}")
    return number


def non_negative_float(argument, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or not number >= 0:
        raise ValueError(f"{argument}: expected a number >= 0, received {value!r}")
    return number


def fraction(argument, value):
    """A number in [0, 1)."""
    number = non_negative_float(argument, value)
    if number >= 1:
        raise ValueError(f"{argument}: expected a number in [0, 1), received {value!r}")
    return number


def int_pair(argument, value):
    """An int or a pair of ints, each positive, as a tuple of two."""
    try:
        pair = (value, value) if _is_int(value) else tuple(value)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise ValueError(
            f"{argument}: expected a positive integer or a pair of them, received {value!r}")
    return tuple(int(v) for v in pair)


def padding(argument, value):
    lowered = value.lower() if isinstance(value, str) else value
    return choice(argument, lowered, ("same", "valid"))


def image_input_shape(layer_name, input_shape, channels=None):
    """Check an NHWC input shape; returns the channel count."""
    if input_shape is None or len(input_shape) != 4:
        raise ValueError(
            f"{layer_name}: expected a 4-D input [batch, height, width, channels], "
            f"received shape {tuple(input_shape) if input_shape is not None else None}")
    if input_shape[-1] is None:
        raise ValueError(f"{layer_name}: the channel dimension of the input must be known, "
                         f"received shape {tuple(input_shape)}")
    if channels is not None and input_shape[-1] != channels:
        raise ValueError(
            f"{layer_name}: expected {channels} input channels, received shape "
            f"{tuple(input_shape)}")
    return int(input_shape[-1])
