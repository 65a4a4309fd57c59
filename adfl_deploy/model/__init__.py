"""What a model is, without PyTorch: variant names and their typed configs, the exported
artefact on disk (ONNX + sidecar), crop preprocessing, and the attention-op contract."""
