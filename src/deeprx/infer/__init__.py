"""Fast inference of a trained DeepRx: folded BatchNorm, channels-last, bf16, int8, ONNX Runtime."""
