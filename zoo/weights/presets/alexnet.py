"""AlexNet's weights: torchvision's layout and its ImageNet file, read where PyTorch keeps it.

`alexnet_torchvision` is torchvision's single-stream AlexNet (widths 64-192-384-256-256, not
those of the "One weird trick" paper its documentation cites), so it reads torchvision's state
dicts through [`zoo.weights.torchvision`][], and `weights="imagenet"` names the file of
torchvision's `AlexNet_Weights.IMAGENET1K_V1`. The zoo ships no AlexNet weights and never
downloads: that file is read from the PyTorch hub cache, where torchvision leaves it, if the
user has it.
"""

from zoo.weights.presets.declaration import Preset, TorchLayout
from zoo.weights.torchvision import alexnet_to_keras

# torchvision's ImageNet AlexNet; the 8 hex digits in the name begin its file's SHA-256.
IMAGENET_FILE = "alexnet-owt-7be5be79.pth"
IMAGENET_URL = "https://download.pytorch.org/models/" + IMAGENET_FILE

TORCH_LAYOUTS = (
    TorchLayout(
        model="alexnet_torchvision",
        source="torchvision AlexNet",
        to_keras=alexnet_to_keras,
    ),
)

PRESETS = (
    Preset(
        model="alexnet_torchvision",
        name="imagenet",
        file=IMAGENET_FILE,
        location="torch_hub",
        fetch=f"{IMAGENET_URL}, or torchvision.models.alexnet(weights='IMAGENET1K_V1')",
        dataset="ImageNet-1k",
        input_shape=(224, 224, 3),
        classes=1000,
        preprocessing="RGB in 0..255 through zoo.preprocess_input(images, mode='torch')",
        prepare="torch",
        made_by="torchvision (AlexNet_Weights.IMAGENET1K_V1)",
    ),
)
