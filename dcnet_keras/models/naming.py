"""Layer names of the built networks follow the original's variable scopes.

A layer whose variables live under TF1 scope ``block1_unit0/first`` is named
``block1_unit0__first`` (Keras forbids ``/`` in names and PyTorch ``.`` in
parameter names); its batch norm is ``block1_unit0__first__bn`` and its PReLU
``block1_unit0__first__prelu``.  The TF1 checkpoint loader relies on this.
"""

SEPARATOR = "__"


def join(*parts):
    return SEPARATOR.join(parts)


def tf1_scope(layer_name):
    """``"block1_unit0__first"`` -> ``"block1_unit0/first"``."""
    return layer_name.replace(SEPARATOR, "/")
