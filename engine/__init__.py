"""The streaming coding service. Never imports torch: it serves exported (ONNX) models."""
