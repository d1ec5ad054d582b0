"""Train the CIFAR-100 DCNet 'seg_cos' as the original script does: `python train_resnet.py --help`."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)  # run from a checkout without installing

from dcnet_keras.training.cifar import main  # noqa: E402

if __name__ == "__main__":
    main(os.path.basename(HERE), repo_root=REPO)
