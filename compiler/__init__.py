"""The compiler: quantized models (a Python graph API, ONNX) to cycle-exact program images."""
