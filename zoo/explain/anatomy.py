"""What each layer of a model costs and sees: parameters, multiply-adds, receptive field.

The numbers come from the layers' own settings and the built model's shapes,
so they describe any channels-last model made of the usual layers.

Multiply-adds (MACs) of one image, per layer (bias additions not counted):

- `Conv2D`: `H_out * W_out * C_out * (k_h * k_w * C_in / groups)`
- `Dense`: `inputs * units`
- everything else (pooling, activations, normalisation): 0

`FLOPs = 2 * MACs` (one multiply and one add).

Receptive field, per output pixel of a layer, on the input image: with
`r` the field's side and `j` the *jump* (input pixels between two
neighbouring output pixels), a window of effective size
`k_eff = d * (k - 1) + 1` and stride `s` gives:

```text
r_out = r_in + (k_eff - 1) * j_in        j_out = j_in * s
```

starting from `r = j = 1` at the input. Padding moves the field but does
not change its size. Square kernels and strides are assumed (the height axis
is used); after a flatten or a global pooling every output sees the whole
image, which is reported as `None`.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo.shapes import pair

__all__ = ["LayerStats", "layer_table", "table_text", "receptive_field_steps"]


@dataclass(frozen=True)
class LayerStats:
    """One layer's row of [`layer_table`][].

    Attributes:
        name, kind: the layer's name and class name.
        output_shape: its output without the batch axis.
        params: trainable and non-trainable weights.
        macs: multiply-adds for one image.
        receptive_field: side in input pixels of the window one output pixel
            depends on (`None` once every output depends on the whole image).
        jump: input pixels between neighbouring output pixels (`None` likewise).
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    receptive_field: int | None
    jump: int | None

    @property
    def flops(self):
        """Floating-point operations for one image: two per multiply-add."""
        return 2 * self.macs


def receptive_field_steps(layer):
    """`(effective window, stride)` a layer applies along the height, or `None`.

    `None` means the layer mixes every position (flatten, global or adaptive
    pooling); `(1, 1)` means it keeps positions apart (activation, padding).
    """
    kind = layer.__class__.__name__
    if kind == "Flatten" or hasattr(layer, "keepdims") or hasattr(layer, "output_size"):
        return None
    if hasattr(layer, "kernel_size"):
        kernel, stride = pair(layer.kernel_size)[0], pair(layer.strides)[0]
        dilation = pair(getattr(layer, "dilation_rate", 1))[0]
        return dilation * (kernel - 1) + 1, stride
    if hasattr(layer, "pool_size"):
        return pair(layer.pool_size)[0], pair(layer.strides or layer.pool_size)[0]
    return 1, 1


def _macs(layer, output_shape):
    kind = layer.__class__.__name__
    if kind == "Conv2D":
        kernel_h, kernel_w = layer.kernel_size
        channels_in = layer.kernel.shape[2]  # already divided by groups in Keras
        height, width, channels_out = output_shape
        return height * width * channels_out * kernel_h * kernel_w * channels_in
    if kind == "Dense":
        return int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return 0


def layer_table(model):
    """One [`LayerStats`][] per layer of a built sequential-topology `model`.

    The input layer is left out. Example (LeNet-5 at 28x28x1):

    ```python
    rows = layer_table(zoo.lenet())
    [r.receptive_field for r in rows]   # [5, 6, 14, 16, None, None, None, None]
    sum(r.macs for r in rows)           # 416,520
    ```
    """
    rows, field, jump = [], 1, 1
    for layer in model.layers:
        if layer.__class__.__name__ == "InputLayer":
            continue
        output_shape = tuple(layer.output.shape[1:])
        step = receptive_field_steps(layer) if field is not None else None
        if step is None:
            field = jump = None
        else:
            window, stride = step
            field, jump = field + (window - 1) * jump, jump * stride
        rows.append(
            LayerStats(
                name=layer.name,
                kind=layer.__class__.__name__,
                output_shape=output_shape,
                params=int(layer.count_params()),
                macs=int(_macs(layer, output_shape)),
                receptive_field=field,
                jump=jump,
            )
        )
    return rows


def table_text(rows):
    """The rows of [`layer_table`][] as an aligned text table with a total line."""
    header = f"{'layer':<14}{'output':<18}{'params':>12}{'MACs':>15}{'RF':>6}{'jump':>6}"
    lines = [header, "-" * len(header)]
    for row in rows:
        field = "all" if row.receptive_field is None else str(row.receptive_field)
        jump = "-" if row.jump is None else str(row.jump)
        lines.append(
            f"{row.name:<14}{str(row.output_shape):<18}{row.params:>12,}{row.macs:>15,}"
            f"{field:>6}{jump:>6}"
        )
    params, macs = sum(r.params for r in rows), sum(r.macs for r in rows)
    lines.append(f"{'total':<32}{params:>12,}{macs:>15,}")
    return "\n".join(lines)
