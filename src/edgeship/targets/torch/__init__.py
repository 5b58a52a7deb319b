"""PyTorch eager: the FP32 reference and a benchmark baseline."""
