"""TensorRT: engines built from ONNX on an NVIDIA GPU, and their runner."""
