"""Running an exported model: the ``Embedder`` (crops in, unit embeddings out) over pluggable
backends (ONNX Runtime CPU/CUDA, TensorRT, PyTorch from the training side), and the colour
histogram as a network-free embedder."""
