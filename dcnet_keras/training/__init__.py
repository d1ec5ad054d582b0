"""Training runs of the original scripts (TensorFlow only): logs, strategies, the loop."""
