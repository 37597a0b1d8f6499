"""The joint video + raxel diffusion transformer."""

from .configs import CONFIGS, ModelConfig, build_model, count_parameters, model_config
from .dit import RaxelsDiT

__all__ = ["CONFIGS", "ModelConfig", "RaxelsDiT", "build_model", "count_parameters", "model_config"]
