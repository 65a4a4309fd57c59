"""Export side (PyTorch -> ONNX). Installed as ``adfl_deploy.export``; needs the ``train`` extra."""
