"""Training loop, checkpoints and metrics shared by every strategy plugin."""

from snnplug.engine.checkpoint import load_checkpoint, save_checkpoint
from snnplug.engine.trainer import TrainConfig, TrainResult, evaluate, train

__all__ = ["TrainConfig", "TrainResult", "train", "evaluate", "save_checkpoint", "load_checkpoint"]
