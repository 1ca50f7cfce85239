"""The training and evaluation core every strategy, command and benchmark uses.

* :func:`train` — the one training loop (bundle, tensors or loader; callbacks; checkpoints,
  exact resume, SIGTERM, torchrun);
* :func:`evaluate_anytime` / :func:`anytime_accuracy` / :func:`evaluate` — the one evaluation
  (accuracy after every step from one simulation);
* :mod:`.callbacks` — :class:`EvalEvery` (time to accuracy), :class:`PeakMemory`, :class:`LogEpochs`;
* :mod:`.energy` — the 45 nm energy model.
"""

from snnplug.engine.callbacks import EvalEvery, LogEpochs, PeakMemory, TrainState
from snnplug.engine.checkpoint import load_checkpoint, save_checkpoint
from snnplug.engine.evaluate import anytime_accuracy, direct_anytime, evaluate, evaluate_anytime
from snnplug.engine.trainer import TrainConfig, TrainResult, train, train_distributed

__all__ = ["TrainConfig", "TrainResult", "TrainState", "train", "train_distributed", "evaluate",
           "evaluate_anytime", "anytime_accuracy", "direct_anytime", "EvalEvery", "PeakMemory", "LogEpochs",
           "save_checkpoint", "load_checkpoint"]
