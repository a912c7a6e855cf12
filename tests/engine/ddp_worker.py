"""Run by ``torchrun`` from test_distributed.py: train, then dump this rank's weights/scores.

ddp_worker.py DATA OUT '{"val_fraction": 0.4, "train": {...}}'
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

from drunet.config import config_from_dict
from drunet.engine.train import train


def main(data: str, out: str, options: str) -> None:
    extra = json.loads(options)
    config = config_from_dict(
        {
            "name": "ddp",
            "runs_dir": str(Path(out) / "runs"),
            "model": {"params": {"init_features": 4, "depth": 2, "blocks_per_stage": 1}},
            "data": {
                "root": data,
                "augmentation": {"patch_size": 32},
                "batch_size": 2,
                "layout": {"val_fraction": extra["val_fraction"]},
            },
            "train": {
                "epochs": 2,
                "steps_per_epoch": 2,
                "device": "cpu",
                "lr": 0.01,
                **extra.get("train", {}),
            },
        }
    )
    result = train(config)
    rank = int(os.environ["RANK"])
    assert result.model is not None
    state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
    save_file(state, str(Path(out) / f"rank{rank}.safetensors"))
    record = result.history[-1]
    summary = {
        "scores": record.scores,
        "val_loss": record.val_loss,
        "lrs": [r.lr for r in result.history],
        "run_dir": str(result.run_dir),
        "group_destroyed": not dist.is_initialized(),
        "postprocessing": result.postprocessing.to_json() if result.postprocessing else None,
        "postprocess": result.config.postprocess.model_dump(),
    }
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
