"""Input pipelines (TensorFlow only), one module per job; ``registry`` names the datasets.

CIFAR-10 / CIFAR-100: ``cifar`` (formats, loading, the data source), ``cifar_files`` (binary
and pickle readers), ``synthetic`` (a learnable offline set), ``cifar_pipelines`` (train /
test tf.data). ImageNet: ``imagenet`` (the data source and pipelines), ``imagenet_records``
(shards, records, label checks), ``imagenet_forensics`` (the bad-record scan),
``imagenet_preprocessing`` (the original's TF1 resize arithmetic). Shared: ``errors``
(``DataError``), ``shard_writer`` (TFRecord shards and test images), ``throughput``.
"""
