"""Runs `raxels.train.train` on a JSON TrainConfig (argv[1]); argv[2] == 'resume' resumes. Used by test_train."""

import json
import sys

from raxels.train import TrainConfig, train

if __name__ == "__main__":
    cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
    train(cfg, resume=len(sys.argv) > 2 and sys.argv[2] == "resume", progress=False)
