"""Input pipelines (TensorFlow only): ``cifar100`` (CIFAR-100: binary, pickle, tfds,
synthetic), ``imagenet`` (slim TFRecord shards or tfds) and ``imagenet_preprocessing``
(the original's TF1 resize arithmetic)."""
