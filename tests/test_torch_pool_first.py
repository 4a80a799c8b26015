"""Max pooling before a convolution's ReLU (zoo.accel.torch_pool_first) gives Keras's outputs and
gradients exactly, and only where the swap is exact."""

import keras
import numpy as np
import pytest

import zoo
from zoo.accel import accelerate, applied

BACKEND = keras.backend.backend()
pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="a PyTorch-only speed-up")


def _outputs_and_gradients(model, images, pool_first):
    """What the lean forward gives, with the noted pairs or without them."""
    import torch

    from zoo.accel.torch_step import graph_forward

    pairs = model._zoo_pool_first
    model._zoo_pool_first = pairs if pool_first else ()
    try:
        outputs = graph_forward(model, images)
        weights = [weight.value for weight in model.trainable_weights]
        loss = (outputs * torch.arange(1.0, outputs.shape[-1] + 1)).sum()
        return outputs.detach(), torch.autograd.grad(loss, weights)
    finally:
        model._zoo_pool_first = pairs


@pytest.mark.parametrize(
    ("name", "paired"),
    [("lenet5_modern", ("conv1", "conv2")), ("alexnet", ("conv1", "conv2", "conv5"))],
)
def test_pooling_first_gives_kerass_outputs_and_gradients_exactly(name, paired):
    import torch

    shape = zoo.model_info(name)["min_input_shape"]
    model = zoo.get_model(name, input_shape=shape, classes=10)
    assert applied(model).pool_first == paired
    assert f"max pool before ReLU x{len(paired)}" in applied(model).describe()
    # Few distinct values: windows with equal maxima, and windows all at or below zero.
    rng = np.random.default_rng(0)
    images = torch.from_numpy(np.round(rng.normal(size=(4, *shape)) * 2).astype("float32"))
    got, got_grads = _outputs_and_gradients(model, images, pool_first=True)
    want, want_grads = _outputs_and_gradients(model, images, pool_first=False)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    torch.testing.assert_close(got, model(images).detach(), rtol=0, atol=0)
    for mine, kerass in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(mine, kerass, rtol=0, atol=0)
    assert any(float(grad.abs().max()) > 0 for grad in got_grads)


def _functional(*blocks):
    inputs = keras.Input((12, 12, 3))
    x = inputs
    for block in blocks:
        x = block(x)
    return inputs, x


def _conv(**options):
    return keras.layers.Conv2D(4, 3, padding="same", **{"activation": "relu", **options})


def test_only_a_relu_convolution_feeding_one_max_pool_is_paired():
    from zoo.accel.torch_pool_first import pair_up

    pool = lambda: keras.layers.MaxPooling2D(2)  # noqa: E731
    inputs, outputs = _functional(_conv(name="a"), pool(), keras.layers.Flatten())
    cases = {"plain": keras.Model(inputs, outputs)}
    inputs, outputs = _functional(_conv(activation="tanh"), pool(), keras.layers.Flatten())
    cases["tanh"] = keras.Model(inputs, outputs)
    inputs, outputs = _functional(_conv(), keras.layers.AveragePooling2D(2))
    cases["average pool"] = keras.Model(inputs, outputs)
    inputs = keras.Input((12, 12, 3))
    features = _conv()(inputs)
    cases["two consumers"] = keras.Model(inputs, [keras.layers.MaxPooling2D(2)(features), features])
    for model in cases.values():
        accelerate(model)
    assert [conv.name for conv, _ in pair_up(cases["plain"])] == ["a"]
    for case in ("tanh", "average pool", "two consumers"):
        assert pair_up(cases[case]) == (), case


def test_a_pair_whose_convolution_changes_later_goes_back_to_kerass_order():
    import torch

    from zoo.accel.torch_pool_first import operations

    model = zoo.get_model("lenet5_modern")
    images = torch.rand(2, 28, 28, 1)
    assert len(operations(model, images)) == 4  # two pairs, two calls each
    model.get_layer("conv1").enable_lora(2)  # its call goes back to Keras's own
    assert len(operations(model, images)) == 2
    got, _ = _outputs_and_gradients(model, images, pool_first=True)
    torch.testing.assert_close(got, model(images).detach(), rtol=0, atol=0)
