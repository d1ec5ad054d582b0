"""Input pipelines (TensorFlow only): ``cifar100`` reads, checks and augments CIFAR-100."""
