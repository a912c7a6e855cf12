"""Tests of drunet.inference: the predictor, file prediction and overlays."""
