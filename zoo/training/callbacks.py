"""The optional callbacks `fit` runs with, as the flags ask.

Every run also has Keras's `TerminateOnNaN`, the epoch checkpoint
([`zoo.training.checkpoint.epoch_callback`][]) and the Ctrl-C check
([`zoo.training.interrupt.interrupt_callback`][]); these two are a choice:

- `--early-stopping N`: Keras's `EarlyStopping`, which ends training once
  the validation loss (the training loss without a validation split) has not
  improved for N epochs and restores the best epoch's weights (early stopping
  as in Prechelt, 1998, "Early stopping - but when?");
- `--tensorboard`: Keras's `TensorBoard` writer, into `OUTPUT/logs`, on
  the process that writes the run's files.
"""

from __future__ import annotations

import os

from zoo.errors import ZooError

__all__ = ["optional_callbacks"]


def optional_callbacks(config, output, has_validation=True, writes=True):
    """Early stopping and TensorBoard, when asked for (TensorBoard only where `writes`)."""
    import keras

    callbacks = []
    if config.early_stopping:
        monitor = "val_loss" if has_validation else "loss"
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, patience=config.early_stopping, restore_best_weights=True
            )
        )
    if config.tensorboard and writes:
        try:
            import tensorboard  # noqa: F401
            import tensorflow  # noqa: F401  (TensorBoard's writer needs it on every backend)
        except ImportError:
            raise ZooError(
                "--tensorboard needs TensorFlow and TensorBoard installed "
                "(pip install 'zoo[tensorboard]')."
            ) from None
        callbacks.append(keras.callbacks.TensorBoard(log_dir=os.path.join(output, "logs")))
    return callbacks
