"""``python -m dcnet_keras.train``: train any registered network, dataset and recipe.

See :mod:`dcnet_keras.training.cli` and ``python -m dcnet_keras.train --help``.
"""

from dcnet_keras.training.cli import main

if __name__ == "__main__":
    main()
