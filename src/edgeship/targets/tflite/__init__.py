"""TFLite (LiteRT): ONNX through onnx2tf or PyTorch through litert-torch, run with ai-edge-litert."""
