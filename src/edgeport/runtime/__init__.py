"""Running artifacts: ONNX Runtime and TorchScript runners (no torch needed for ONNX)."""

from edgeport.runtime.runners import ArtifactRunner, OnnxRunner, TorchScriptRunner, runner_for

__all__ = ["ArtifactRunner", "OnnxRunner", "TorchScriptRunner", "runner_for"]
