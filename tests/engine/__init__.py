"""Tests of drunet.engine: checkpoints, run folders, history, devices, the trainer, train()."""
