"""torchvision's AlexNet in a channels-last Keras model: its state dicts, read safely and mapped.

`alexnet_torchvision` is `torchvision.models.alexnet`, the single-stream AlexNet torchvision
trained (its documentation cites Krizhevsky 2014, "One weird trick for parallelizing
convolutional neural networks", but its widths 64-192-384-256-256 are not that paper's
64-192-384-384-256), so its layers map one to one onto torchvision's `nn.Sequential` indices
(`ALEXNET_LAYERS`). PyTorch stores tensors in another layout than a channels-last model:

```text
convolution  torch (out, in, kh, kw)  ->  Keras (kh, kw, in, out)
dense        torch (out, in)          ->  Keras (in, out)
```

and torchvision flattens pool5 as `(C, H, W)` where this model flattens `(H, W, C)`, so
fc1's 9216 input rows are reordered as well ([`torch_fc1_to_keras`][]).

Only [`read_torch_state_dict`][] imports torch, and only when called. It reads with
`torch.load(weights_only=True)`, which unpickles tensors and plain containers only: a file
that holds other Python objects is refused, since loading those could run code.
"""

from __future__ import annotations

import os
import pickle

from zoo.errors import ZooError

__all__ = [
    "ALEXNET_LAYERS",
    "TORCH_SUFFIXES",
    "alexnet_to_keras",
    "read_torch_state_dict",
    "torch_fc1_to_keras",
]

TORCH_SUFFIXES = (".pth", ".pt")

# The zoo's layer name -> torchvision AlexNet's state-dict prefix (its nn.Sequential indices).
ALEXNET_LAYERS = {
    "conv1": "features.0",
    "conv2": "features.3",
    "conv3": "features.6",
    "conv4": "features.8",
    "conv5": "features.10",
    "fc1": "classifier.1",
    "fc2": "classifier.4",
    "predictions": "classifier.6",
}
POOL_GRID = (6, 6)  # torchvision's AdaptiveAvgPool2d((6, 6)) before fc1

# Our own words for a file torch's safe loader refused: torch's own message suggests turning
# that safety off, which would run whatever code the file carries. The zoo never does.
_NOT_PLAIN = (
    "{path} is not a plain state dict of tensors: it holds other Python objects, and it was "
    "not loaded because loading them could run code. Re-save it as a state dict where it was "
    "made: torch.save(model.state_dict(), path)."
)


def _first_line(error):
    """The first line of `error`, never one that talks about `weights_only`."""
    text = str(error).strip()
    line = text.splitlines()[0][:200] if text else ""
    return "" if "weights_only" in line else line


def read_torch_state_dict(path):
    """`{key: float32 array}` from a PyTorch state-dict file (`torch.load(weights_only=True)`).

    Only this function imports torch, and only when called.
    """
    if not os.path.isfile(path):
        raise ZooError(f"weights file {path!r} does not exist. Check the path.")
    try:
        import torch
    except ImportError:
        raise ZooError(
            f"reading the PyTorch file {path} needs torch, which is not installed. Convert it "
            f"once on a machine with torch: zoo-convert {path} alexnet.weights.h5, then pass "
            "weights='alexnet.weights.h5' (it loads on every backend without torch)."
        ) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only met an object other than tensors
        raise ZooError(_NOT_PLAIN.format(path=path)) from None
    except Exception as error:  # zip and torch errors
        raise ZooError(
            f"cannot read {path} as a PyTorch state dict ({type(error).__name__}: "
            f"{_first_line(error)}). Save one with torch.save(model.state_dict(), path)."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # a training checkpoint that wraps the state dict
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ZooError(
            f"{path} holds a {type(state).__name__}, not a state dict of tensors. Save one "
            "with torch.save(model.state_dict(), path)."
        )
    return {
        key.removeprefix("module."): value.detach().cpu().float().numpy()
        for key, value in state.items()
    }


def torch_fc1_to_keras(weight, channels, grid=POOL_GRID):
    """torchvision's fc1 `(out, C*H*W)` -> a Keras kernel `(H*W*C, out)`.

    Row `c*H*W + h*W + w` of torch's input is the pooled value at `(h, w, c)`;
    a channels-last `Flatten` puts that value at `h*W*C + w*C + c`.
    """
    height, width = grid
    out = weight.shape[0]
    grid_kernel = weight.reshape(out, channels, height, width).transpose(2, 3, 1, 0)
    return grid_kernel.reshape(height * width * channels, out)


def alexnet_to_keras(state, source, layers=None):
    """Keras-layout arrays per zoo layer from a torchvision AlexNet state dict.

    Returns `{"conv1": [kernel (11, 11, 3, 64), bias (64,)], ..., "fc2": [...], and the
    head: [kernel (4096, classes), bias (classes,)]}`, for the layers named in `layers`
    (all of `ALEXNET_LAYERS` when `None`: a feature extractor asks for the
    convolutions only). The whole state dict is checked against torchvision's keys first.
    """
    expected = {
        f"{prefix}.{kind}" for prefix in ALEXNET_LAYERS.values() for kind in ("weight", "bias")
    }
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise ZooError(
            f"{source} is not a torchvision AlexNet state dict: "
            f"{'missing ' + ', '.join(missing[:4]) if missing else ''}"
            f"{'; ' if missing and extra else ''}"
            f"{'unexpected ' + ', '.join(extra[:4]) if extra else ''}. Save "
            "torchvision.models.alexnet(...).state_dict()."
        )
    arrays = {}
    for layer, prefix in ALEXNET_LAYERS.items():
        if layers is not None and layer not in layers:
            continue
        weight, bias = state[prefix + ".weight"], state[prefix + ".bias"]
        ndim = 4 if layer.startswith("conv") else 2
        if weight.ndim != ndim or bias.shape != (weight.shape[0],):
            raise ZooError(
                f"{source}: {prefix}.weight {weight.shape} and {prefix}.bias {bias.shape} "
                f"cannot be layer '{layer}' (a {'convolution' if ndim == 4 else 'dense'} "
                "layer). Is it a torchvision AlexNet?"
            )
        arrays[layer] = [_to_keras(layer, weight, state, source), bias]
    return arrays


def _to_keras(layer, weight, state, source):
    if layer.startswith("conv"):
        return weight.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if layer != "fc1":
        return weight.T
    channels = state[ALEXNET_LAYERS["conv5"] + ".weight"].shape[0]
    inputs = channels * POOL_GRID[0] * POOL_GRID[1]
    if weight.shape[1] != inputs:
        raise ZooError(
            f"{source}: layer 'fc1' ({ALEXNET_LAYERS['fc1']}.weight) has "
            f"{weight.shape[1]} inputs; after conv5's {channels} channels pooled to "
            f"{POOL_GRID[0]}x{POOL_GRID[1]} it must have {inputs}."
        )
    return torch_fc1_to_keras(weight, channels)
