"""A generated multi-camera scene with ground truth, made of real people's images: the demo's
input and the benchmark that says whether cross-camera re-identification got better or worse.

``generate(SceneConfig(), "out/scene")`` -> ``Scene`` (videos, MOTChallenge gt with global ids).
"""

from adfl_deploy.scene.generate import Scene, generate, load_scene
from adfl_deploy.scene.plan import SceneConfig

__all__ = ["Scene", "SceneConfig", "generate", "load_scene"]
