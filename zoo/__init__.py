"""zoo: classic convolutional networks for Keras 3, on JAX, TensorFlow and PyTorch.

Quick start::

    import zoo
    model = zoo.lenet()                      # LeNet-5, 28x28x1, 10 classes
    model = zoo.get_model("alexnet_torchvision", classes=5)
    zoo.list_models()                        # ['alexnet', 'alexnet_torchvision', ...]
    zoo.model_info("lenet5")["params"]       # 61706

Every model is channels-last, whatever ``keras.json`` says.
"""

from zoo.alexnet import alexnet
from zoo.layers import AdaptiveAveragePooling2D, LocalResponseNormalization
from zoo.lenet import lenet
from zoo.registry import get_model, list_models, model_info, register_model

__version__ = "0.1.0"

__all__ = [
    "AdaptiveAveragePooling2D",
    "LocalResponseNormalization",
    "alexnet",
    "get_model",
    "lenet",
    "list_models",
    "model_info",
    "register_model",
]
