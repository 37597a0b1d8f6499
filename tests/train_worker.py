"""Runs `raxels.train.train` on a JSON TrainConfig (argv[1]); argv[2] == 'resume' resumes. Used by test_train."""

import json
import sys

from raxels.train import train
from raxels.train_config import TrainConfig

if __name__ == "__main__":
    cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
    train(cfg, resume=len(sys.argv) > 2 and sys.argv[2] == "resume", progress=False)
