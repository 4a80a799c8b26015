"""Deprecated: :mod:`zoo.export`, :mod:`zoo.predict` and :mod:`zoo.model_file` replace this module.

Every name it had still works from here, with a ``DeprecationWarning`` on import.
"""

import warnings

from zoo._onnx_repair import repair_jax2onnx_max_pool  # noqa: F401
from zoo.export import (  # noqa: F401
    CAN_EXPORT,
    CHECK_BATCH,
    FORMATS,
    TOLERANCE,
    check_batch,
    check_output_free,
    export,
    run_onnx,
    run_saved_model,
)
from zoo.export import main as export_main  # noqa: F401
from zoo.model_file import DeployError, keras_outputs, load_zoo_model  # noqa: F401
from zoo.predict import classify, load_class_names  # noqa: F401
from zoo.predict import main as predict_main  # noqa: F401

warnings.warn(
    "zoo.deploy is deprecated: use zoo.export, zoo.predict and zoo.model_file.",
    DeprecationWarning,
    stacklevel=2,
)
