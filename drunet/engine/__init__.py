"""Training: the trainer, checkpoints, run folders."""
