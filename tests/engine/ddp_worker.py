"""Run by ``torchrun`` from test_distributed.py: train, then dump this rank's weights/scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

from drunet.config import config_from_dict
from drunet.engine.train import train


def main(data: str, out: str) -> None:
    config = config_from_dict(
        {
            "name": "ddp",
            "runs_dir": str(Path(out) / "runs"),
            "model": {"params": {"init_features": 4, "depth": 2, "blocks_per_stage": 1}},
            "data": {
                "root": data,
                "augmentation": {"patch_size": 32},
                "batch_size": 2,
                "layout": {"val_fraction": 0.4},
            },
            "train": {"epochs": 2, "steps_per_epoch": 2, "device": "cpu", "lr": 0.01},
        }
    )
    result = train(config)
    rank = dist.get_rank()
    state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    save_file(state, str(Path(out) / f"rank{rank}.safetensors"))
    record = result.history[-1]
    summary = {"scores": record.scores, "val_loss": record.val_loss, "run_dir": str(result.run_dir)}
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
