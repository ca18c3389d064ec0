"""Measurement: accuracy parity against eager PyTorch (latency arrives with the bench harness)."""
