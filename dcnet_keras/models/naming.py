"""Layer names of the built networks follow the original's variable scopes.

A layer whose variables live under TF1 scope ``block1_unit0/first`` is named
``block1_unit0.first`` (Keras forbids ``/`` in names); its batch norm is
``block1_unit0.first.bn`` and its PReLU ``block1_unit0.first.prelu``.  The TF1
checkpoint loader relies on this.
"""

SEPARATOR = "."


def join(*parts):
    return SEPARATOR.join(parts)


def tf1_scope(layer_name):
    """``"block1_unit0.first"`` -> ``"block1_unit0/first"``."""
    return layer_name.replace(SEPARATOR, "/")
