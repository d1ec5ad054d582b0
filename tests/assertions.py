"""Assertions shared by the data tests."""

import pytest


def one_line_error(error_type, fn, *args, **kwargs):
    """Call ``fn`` expecting ``error_type``; return its message, asserted to be one line."""
    with pytest.raises(error_type) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message
    return message
