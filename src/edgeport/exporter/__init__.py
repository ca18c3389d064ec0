"""Export: TorchScript and ONNX artifacts, verified against eager PyTorch, into a bundle."""

from edgeport.exporter.flow import ExportOptions, export, list_formats

__all__ = ["ExportOptions", "export", "list_formats"]
