"""The paper's experiments: one command per table (``python -m dcnet_keras.experiments``).

* :mod:`~dcnet_keras.experiments.tables`: the tables as data (grids, trainings, the
  paper's numbers);
* :mod:`~dcnet_keras.experiments.scales`: the ``tiny`` and ``full`` scales;
* :mod:`~dcnet_keras.experiments.runs`: one run's folder, config and result;
* :mod:`~dcnet_keras.experiments.experiment`: a table's cells, trained and evaluated;
* :mod:`~dcnet_keras.experiments.report`: the Markdown and JSON written.
"""
