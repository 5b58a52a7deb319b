"""ONNX Runtime: the reference runtime for ONNX files, and one target per execution provider."""
