"""``python -m dcnet_keras.export``: see :mod:`dcnet_keras.export.cli`."""

from dcnet_keras.export.cli import main

main()
