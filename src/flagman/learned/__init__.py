"""Learned routers: outcome data, training, calibration, evaluation, artifacts."""
