"""ADFL-Deploy: person re-identification from PyTorch training to multi-camera deployment.

This package is the torch-free runtime. The PyTorch side installs inside it as
``adfl_deploy.train`` and ``adfl_deploy.export`` (``pip install -e '.[train]'``) and is never
imported by the runtime.
"""

__version__ = "0.1.0"
