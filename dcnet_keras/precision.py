"""Keras's global dtype policy for a block of code (backend-neutral)."""

import contextlib

import keras


@contextlib.contextmanager
def global_dtype_policy(name):
    """Within the block, Keras's global dtype policy is ``name`` (``None``: left as it is);
    the previous one is restored afterwards, also on error."""
    if name is None:
        yield
        return
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
