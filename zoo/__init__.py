"""zoo: classic convolutional networks for Keras 3, on JAX, TensorFlow and PyTorch.

Quick start:

```python
import zoo
model = zoo.lenet()                      # LeNet-5, 28x28x1, 10 classes
model = zoo.get_model("alexnet_torchvision", classes=5)
zoo.list_models()                        # ['alexnet', 'alexnet_torchvision', ...]
zoo.model_info("lenet5")["params"]       # 61706
zoo.export("runs/lenet5/model.keras", "onnx", "lenet5.onnx")
zoo.set_conv_impl("im2col")              # how Conv2D computes: "auto", "native", "im2col"
```

Every model is channels-last, whatever `keras.json` says.

`import zoo` does not import Keras: the names below load on first use, so a
script (or `zoo-train --backend torch`) can still choose the Keras backend
after importing the package.
"""

import importlib

from zoo.accel.runtime import register_layers_when_keras_loads

register_layers_when_keras_loads()  # so keras.saving.load_model finds the zoo's layers

__version__ = "0.1.0"

_LAZY = {
    "lenet": "zoo.models.lenet",
    "alexnet": "zoo.models.alexnet",
    "get_model": "zoo.models",
    "list_models": "zoo.models",
    "model_info": "zoo.models",
    "model_spec": "zoo.models",
    "register_model": "zoo.models",
    "ModelSpec": "zoo.models",
    "TrainConfig": "zoo.training.config",
    "train": "zoo.training.run",
    "export": "zoo.deploy.export",
    "ZooError": "zoo.errors",
    "preprocess_digit": "zoo.data.digit",
    "seed": "zoo.accel.runtime",
    "AdaptiveAveragePooling2D": "zoo.layers",
    "LocalResponseNormalization": "zoo.layers",
    "preprocess_input": "zoo.weights.imagenet",
    "decode_predictions": "zoo.weights.imagenet",
    "set_conv_impl": "zoo.accel.conv",
    "get_conv_impl": "zoo.accel.conv",
    "conv_impl": "zoo.accel.conv",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
