"""Train the ImageNet DCNet (modified ResNet-18) as the original script meant to:
``python train_DCNet.py --data_dir /data/imagenet-tfrecords`` (``--help`` for every flag)."""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without installing

from dcnet_keras.training.imagenet import main  # noqa: E402

if __name__ == "__main__":
    main(repo_root=REPO)
