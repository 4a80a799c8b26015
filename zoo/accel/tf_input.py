"""TensorFlow only: `fit` and `evaluate` on NumPy arrays through a lean `tf.data` pipeline.

On TensorFlow, Keras turns arrays given to `fit` or `evaluate` into a `tf.data`
pipeline: shuffled indices, a parallel `map` that gathers each batch, and a
prefetch, the last two sized by tf.data's autotuner. On a 2-core CPU whole
epochs of that pipeline ran at about half speed, at random, and with autotuning
off they did not (BENCHMARKS.md, "Issue 32, 2026-12-06"). Once a seed is set,
its shuffle also repeats the first epoch's order in every epoch.

[`array_dataset`][] gathers the same batches from the arrays with autotuning off,
the length declared, and a new order on every pass, drawn from a seed and the
epoch's number; [`lean_fit`][] and [`lean_evaluate`][] hand it to Keras's `fit`
and `evaluate`. Before the first `fit`, [`lean_fit`][] also creates the metrics'
and the optimizer's variables ([`build_before_tracing`][]): Keras on TensorFlow
otherwise creates them inside the first trace of its training step, and a
`tf.function` that creates variables is traced twice. Unshuffled, the numbers are
Keras's exactly (a test compares every weight). Only arrays in the common case take
this path: `x` and `y` NumPy arrays, no sample or class weights, no
`validation_split` or `steps_per_epoch`, no distribution strategy other than
`MirroredStrategy`; anything else is Keras's own call. As with the other speed-ups
only the model *instance*'s methods are replaced, so the model stays a
`keras.Model` and a saved file is plain Keras.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from zoo.accel.batch_hooks import call_arguments
from zoo.accel.predict import DEFAULT_BATCH_SIZE  # Keras's own, when batch_size is left out

__all__ = [
    "array_dataset",
    "build_before_tracing",
    "lean_evaluate",
    "lean_fit",
    "takes_lean_path",
    "use_lean_input",
]

# Arguments that make Keras do more with arrays than batch them: left to Keras.
KERAS_ONLY = (
    "sample_weight",
    "class_weight",
    "validation_split",
    "steps_per_epoch",
    "steps",
    "_use_cached_eval_dataset",  # fit's own validation, already a dataset
)


def use_lean_input(model):
    """Give `model` [`lean_fit`][] and [`lean_evaluate`][]; returns whether it took them."""
    if keras.backend.backend() != "tensorflow":
        return False
    if not getattr(model, "_zoo_lean_input", False):
        model.fit = lean_fit.__get__(model)
        model.evaluate = lean_evaluate.__get__(model)
        model._zoo_lean_input = True
    return True


def array_dataset(x, y, batch_size, shuffle, seed=0, first_pass=0, passes=1):
    """`(x, y)` in batches, `passes` times over, as a `tf.data.Dataset` with autotuning off.

    Each pass (each epoch of `fit`) takes the samples in a new order, drawn
    from `(seed, pass number)` inside TensorFlow without a random state; the
    passes are numbered from `first_pass` (`fit`'s `initial_epoch`), so a
    resumed run takes the orders the whole run would have taken. Keras's own
    pipeline keeps a random state instead, and once a seed is set it repeats
    the first epoch's order in every epoch.

    Args:
        x: images, e.g. `(N, 28, 28, 1)` float32.
        y: labels, `(N,)` integers or `(N, classes)` one-hot.
        batch_size: samples per batch; the last batch of a pass holds the rest.
        shuffle: whether to shuffle; `False` keeps the arrays' order.
        seed: the seed of every pass's order.
        first_pass: the number of the first pass.
        passes: how many passes the dataset holds.

    Returns:
        A dataset of `(x_batch, y_batch)` pairs, `passes * ceil(N / batch_size)` of them.
    """
    count = len(x)
    numbers = tf.data.Dataset.range(first_pass, first_pass + passes)
    orders = numbers.map(_as_written(lambda number: _order(count, shuffle, seed, number)))
    batches = orders.flat_map(
        _as_written(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
    )
    images, labels = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    gather = _as_written(lambda rows: (tf.gather(images, rows), tf.gather(labels, rows)))
    dataset = batches.map(gather)
    length = tf.data.experimental.assert_cardinality(passes * math.ceil(count / batch_size))
    options = tf.data.Options()
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False  # as Keras's
    return dataset.prefetch(1).apply(length).with_options(options)


def _as_written(function):
    """`function` for `tf.data` to trace as it is: it has no Python control flow on tensors,
    so AutoGraph's rewriting of its source (tens of milliseconds each, at every run's first
    `fit`) would change nothing."""
    return tf.autograph.experimental.do_not_convert(function)


def _order(count, shuffle, seed, number):
    """The indices `0..count-1` in pass `number`'s order (a graph function of its inputs)."""
    indices = tf.range(count, dtype=tf.int64)
    if not shuffle:
        return indices
    key = tf.stack([tf.constant(seed, tf.int64), number])
    return tf.random.experimental.stateless_shuffle(indices, seed=key)


def _is_pair(x, y):
    return isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and len(x) == len(y) > 0


def _given(value):
    """Whether an argument holds something other than its default (`None`, `0`, `False`)."""
    return bool(value) if isinstance(value, (bool, int, float)) else value is not None


def takes_lean_path(model, arguments):
    """Whether a `fit` or `evaluate` call, its arguments by name, reads its arrays
    through [`array_dataset`][]."""
    return (
        _is_pair(arguments.get("x"), arguments.get("y"))
        and not any(_given(arguments.get(name)) for name in KERAS_ONLY)
        and _one_machine(getattr(model, "_distribute_strategy", None))
        and arguments.get("shuffle", True) in (True, False)  # not "batch"
    )


def _shuffle_seed():
    """The seed `keras.utils.set_random_seed` set, so that a run and its resumption (or the
    same run on two devices) see the same orders; else a random one."""
    try:
        from keras.src.backend.common import global_state

        seed = global_state.get_global_attribute("global_random_seed")
    except ImportError:  # a Keras that keeps it elsewhere
        seed = None
    return int(np.random.randint(2**31 - 1)) if seed is None else int(seed)


def _one_machine(strategy):
    """No strategy, or `MirroredStrategy` (the zoo's data-parallel): one process feeds it."""
    return strategy is None or type(strategy) is tf.distribute.MirroredStrategy


def _validation(data, batch_size):
    """`validation_data` as a dataset when it is an `(x, y)` pair of arrays, else as given."""
    if isinstance(data, tuple) and len(data) == 2 and _is_pair(*data):
        return array_dataset(*data, batch_size, shuffle=False)
    return data


def lean_fit(self, *args, **kwargs):
    """`keras.Model.fit`'s arguments and result (its `History`)."""
    keras_fit = type(self).fit
    arguments = call_arguments(keras_fit, self, args, kwargs)
    if not takes_lean_path(self, arguments):
        return keras_fit(self, *args, **kwargs)
    size = arguments.pop("batch_size", None) or DEFAULT_BATCH_SIZE
    x, y = arguments.pop("x"), arguments.pop("y")
    shuffle = arguments.pop("shuffle", True)
    seed = _shuffle_seed() if shuffle else 0
    first = arguments.get("initial_epoch", 0)
    passes = max(1, arguments.get("epochs", 1) - first)
    dataset = array_dataset(x, y, size, shuffle, seed, first, passes)
    build_before_tracing(self, x[:size], y[:size])
    arguments["steps_per_epoch"] = math.ceil(len(x) / size)  # one pass; the next epoch goes on
    if arguments.get("validation_data") is not None:
        every = arguments.pop("validation_batch_size", None) or size
        arguments["validation_data"] = _validation(arguments["validation_data"], every)
    return keras_fit(self, dataset, shuffle=False, **arguments)


def build_before_tracing(model, x, y):
    """Create `model`'s metric and optimizer variables from one batch's shapes, as Keras
    does before `fit` under a distribution strategy.

    Without a strategy Keras defers this to the first trace of its training step,
    and `tf.function` traces a function that created variables a second time
    (BENCHMARKS.md: one trace instead of two shortens the first epoch). Under a
    strategy, or once everything is built, Keras's own `fit` has nothing left for it.

    Args:
        model: a compiled `keras.Model`.
        x: one batch of inputs, e.g. `(64, 28, 28, 1)`.
        y: its targets, e.g. `(64,)` or `(64, classes)`.
    """
    if getattr(model, "_distribute_strategy", None) is None and hasattr(model, "_symbolic_build"):
        model._symbolic_build(data_batch=(x, y))


def lean_evaluate(self, *args, **kwargs):
    """`keras.Model.evaluate`'s arguments and result."""
    keras_evaluate = type(self).evaluate
    arguments = call_arguments(keras_evaluate, self, args, kwargs)
    if not takes_lean_path(self, arguments):
        return keras_evaluate(self, *args, **kwargs)
    size = arguments.pop("batch_size", None) or DEFAULT_BATCH_SIZE
    dataset = array_dataset(arguments.pop("x"), arguments.pop("y"), size, shuffle=False)
    return keras_evaluate(self, dataset, **arguments)
