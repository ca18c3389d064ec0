"""int8 quantization with ONNX Runtime: dynamic and static (calibrated, per-channel, QDQ),
an accuracy budget enforced by keeping sensitive tensors in float, and a speed check."""

from edgeport.quantization.flow import QuantizeOptions, quantize
from edgeport.quantization.methods import CalibrationMethod, QuantFormat

__all__ = ["CalibrationMethod", "QuantFormat", "QuantizeOptions", "quantize"]
