"""Training stage: the training run (run.py), augmentations (augment.py), recalibration of a
trained checkpoint (calibrate.py) and multi-process data parallelism (distributed.py).
ROS-free: usable from a notebook or a GPU server."""

from .calibrate import recalibrate_checkpoint
from .run import (LabelledInputs, TrainConfig, TrainingRun, predict_arrays, split_holdout,
                  train_from_folder, train_on_inputs)

__all__ = ["LabelledInputs", "TrainConfig", "TrainingRun", "predict_arrays",
           "recalibrate_checkpoint", "split_holdout", "train_from_folder", "train_on_inputs"]
