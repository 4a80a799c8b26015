"""The backend speed-ups compute what Keras's own code does: on PyTorch copy-free pooling,
convolutions with the bias in the kernel and the fused Adam update, on JAX pooling by reshape
and max pooling with a gradient from shifted slices (zoo.accel). The PyTorch training step
is tested in test_torch_step.py."""

import keras
import numpy as np
import pytest

import zoo
from zoo.accel import accelerate, applied

BACKEND = keras.backend.backend()


def mkl_is_slow_here():
    from zoo.accel import torch_dense  # imports PyTorch: call it on PyTorch only

    return torch_dense.mkl_is_slow_here()


on_torch = pytest.mark.skipif(BACKEND != "torch", reason="a PyTorch-only speed-up")
on_torch_or_tf = pytest.mark.skipif(
    BACKEND not in ("torch", "tensorflow"), reason="fused Adam: PyTorch and TensorFlow"
)
# The optimizer method each backend's fused Adam replaces on the instance.
FUSED_ADAM_METHOD = {"torch": "_parallel_update_step", "tensorflow": "update_step"}.get(BACKEND)


@pytest.fixture
def every_weight_fused(monkeypatch):
    """On TensorFlow, every weight through the fused kernel, not only the large ones."""
    if BACKEND == "tensorflow":
        from zoo.accel import tf_adam

        monkeypatch.setattr(tf_adam, "FUSED_MIN_SIZE", 0)


def _use_fused_adam(optimizer):
    if BACKEND == "torch":
        from zoo.accel.torch_adam import use_fused_adam
    else:
        from zoo.accel.tf_adam import use_fused_adam
    return use_fused_adam(optimizer)


# (input shape, pool size, strides): LeNet's 2x2/2, AlexNet's overlapping 3x3/2, odd sizes
CASES = [
    ((8, 28, 28, 6), 2, 2),
    ((2, 55, 55, 16), 3, 2),
    ((3, 7, 9, 5), 3, 1),
    ((2, 5, 6, 4), 2, 1),
]


def _pool_and_gradient(layer, x, weights):
    """The layer's output and the gradient of ``sum(output * weights)`` w.r.t. ``x``."""
    import torch

    x = torch.tensor(x, requires_grad=True)
    out = layer(x)
    (out * torch.tensor(weights)).sum().backward()
    return out.detach().numpy(), x.grad.numpy(), out


@on_torch
@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("shape, size, strides", CASES)
def test_same_outputs_and_gradients_as_keras(kind, shape, size, strides):
    from zoo.accel.torch_pooling import use_channels_last_pooling

    cls = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    keras_layer = cls(size, strides=strides, data_format="channels_last")
    fast_layer = cls(size, strides=strides, data_format="channels_last")
    assert use_channels_last_pooling(fast_layer)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype("float32")
    out_shape = keras_layer.compute_output_shape(shape)
    weights = rng.standard_normal(out_shape).astype("float32")

    want, want_grad, keras_out = _pool_and_gradient(keras_layer, x, weights)
    got, got_grad, fast_out = _pool_and_gradient(fast_layer, x, weights)

    tolerance = 0 if kind == "max" else 1e-6  # a max picks the same element; a mean may round
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance)
    np.testing.assert_allclose(got_grad, want_grad, rtol=0, atol=tolerance)
    # The point of it: the result is already laid out (batch, H, W, C); Keras's is a view.
    assert fast_out.is_contiguous() and not keras_out.is_contiguous()


@on_torch
def test_only_valid_channels_last_pooling_layers_change():
    from zoo.accel.torch_pooling import use_channels_last_pooling

    assert not use_channels_last_pooling(keras.layers.MaxPooling2D(2, padding="same"))
    assert not use_channels_last_pooling(keras.layers.MaxPooling2D(2, data_format="channels_first"))
    assert not use_channels_last_pooling(keras.layers.GlobalAveragePooling2D())
    assert not use_channels_last_pooling(keras.layers.Dense(3))


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern", "alexnet"])
def test_zoo_models_get_it_on_torch_and_jax_and_save_as_plain_keras(name, tmp_path):
    model = zoo.get_model(name, input_shape=zoo.model_info(name)["min_input_shape"])
    changed = sorted(name for name in vars_with_own_call(model))
    pools = sorted(layer.name for layer in model.layers if "pool" in layer.name)
    convs = sorted(layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    large_dense = [
        layer.name
        for layer in model.layers
        if isinstance(layer, keras.layers.Dense) and np.prod(layer.kernel.shape) >= 1 << 20
    ]
    if BACKEND != "torch" or not mkl_is_slow_here():
        large_dense = []
    # On PyTorch every convolution adds its bias in the kernel: all are valid, or same at
    # stride 1; and Dense layers of a million weights or more infer through oneDNN where
    # MKL is slow (a CPU not Intel's)
    expected = {"torch": sorted(pools + convs + large_dense), "jax": pools}.get(BACKEND, [])
    assert changed == expected
    assert accelerate(model) == applied(model)  # idempotent: the same choices again
    assert sorted(vars_with_own_call(model)) == expected

    x = np.random.default_rng(0).random((2, *model.input_shape[1:]), dtype="float32")
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert not list(vars_with_own_call(loaded))  # Keras's own pooling after a plain load
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def vars_with_own_call(model):
    """Names of the layers whose instance carries its own ``call``."""
    return (layer.name for layer in model.layers if "call" in vars(layer))


# --------------------------------------------------------------------------- conv bias

# (input shape, filters, kernel, strides, padding, dilation, bias, activation): LeNet's and
# AlexNet's layers, dilation, a non-square kernel under "same", no bias, no activation
CONV_CASES = [
    ((4, 28, 28, 1), 6, 5, 1, "same", 1, True, "relu"),
    ((4, 14, 14, 6), 16, 5, 1, "valid", 1, True, "relu"),
    ((2, 63, 63, 3), 8, 11, 4, "valid", 1, True, "relu"),
    ((2, 9, 11, 4), 5, 3, 2, "valid", 1, True, None),
    ((2, 12, 12, 3), 4, 3, 1, "same", 2, False, "tanh"),
    ((2, 8, 8, 2), 3, (3, 5), 1, "same", 1, True, None),
    ((2, 13, 13, 3), 7, 3, 1, "valid", 3, True, "relu"),
]


def _conv_and_gradients(layer, x, weights):
    """The layer's output and the gradients of ``sum(output * weights)`` w.r.t. ``x`` and
    the layer's weights."""
    import torch

    x = torch.tensor(x, requires_grad=True)
    out = layer(x)
    (out * torch.tensor(weights)).sum().backward()
    grads = [x.grad.numpy()] + [w.value.grad.numpy() for w in layer.trainable_weights]
    return out.detach().numpy(), grads


@on_torch
@pytest.mark.parametrize(
    "shape, filters, kernel, strides, padding, dilation, bias, act", CONV_CASES
)
def test_fused_bias_conv_equals_kerass_conv(
    shape, filters, kernel, strides, padding, dilation, bias, act
):
    from zoo.accel.torch_conv import use_fused_bias

    def make():
        keras.utils.set_random_seed(0)
        layer = keras.layers.Conv2D(
            filters, kernel, strides=strides, padding=padding, dilation_rate=dilation,
            use_bias=bias, activation=act, bias_initializer="random_normal",
        )  # fmt: skip
        layer.build(shape)
        return layer

    keras_layer, fused_layer = make(), make()
    assert use_fused_bias(fused_layer) and "call" in vars(fused_layer)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype("float32")
    weights = rng.standard_normal(keras_layer.compute_output_shape(shape)).astype("float32")
    want, want_grads = _conv_and_gradients(keras_layer, x, weights)
    got, got_grads = _conv_and_gradients(fused_layer, x, weights)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert len(got_grads) == len(want_grads) == (4 if bias else 3) - 1
    for got_grad, want_grad in zip(got_grads, want_grads, strict=True):
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-5, atol=1e-5)


@on_torch
def test_only_convs_torch_pads_like_keras_get_the_fused_bias():
    from zoo.accel.torch_conv import use_fused_bias

    class MyConv(keras.layers.Conv2D):
        pass

    assert not use_fused_bias(keras.layers.Conv2D(3, 3, strides=2, padding="same"))
    assert not use_fused_bias(keras.layers.Conv2D(3, 4, padding="same"))  # pads 1 then 2
    assert not use_fused_bias(keras.layers.Conv2D(4, 3, groups=2))
    assert not use_fused_bias(keras.layers.Conv2D(3, 3, data_format="channels_first"))
    assert not use_fused_bias(MyConv(3, 3))
    assert not use_fused_bias(keras.layers.Dense(3))
    assert use_fused_bias(keras.layers.Conv2D(3, 3, strides=2))


@on_torch
def test_fused_bias_conv_defers_to_the_conv_impl_zoo_conv_chose():
    from zoo.accel.conv import apply_conv_impl
    from zoo.accel.torch_conv import use_fused_bias

    layer = keras.layers.Conv2D(4, 3)
    layer.build((2, 8, 8, 3))
    assert use_fused_bias(layer)
    assert apply_conv_impl(layer, "im2col") == "im2col"
    seen = []
    im2col = layer.convolution_op
    layer.convolution_op = lambda inputs, kernel: seen.append(1) or im2col(inputs, kernel)
    x = np.random.default_rng(0).random((2, 8, 8, 3), dtype="float32")
    layer(x)
    assert seen == [1]  # Keras's call ran, through the layer's im2col convolution_op


# --------------------------------------------------------------------------- fused Adam


def _train_steps(fused, steps=1, schedule_steps=40):
    from zoo.training.compile import learning_rate_schedule

    rng = np.random.default_rng(0)
    x = rng.random((8 * steps, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, 8 * steps)
    keras.utils.set_random_seed(0)
    model = zoo.get_model("lenet5_modern")
    rate = learning_rate_schedule(3e-3, "warmup-cosine", schedule_steps)
    model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy")
    if fused:
        assert _use_fused_adam(model.optimizer)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    state = [np.asarray(v) for v in model.optimizer.variables]
    return model, [w.copy() for w in model.get_weights()], state, history.history["loss"]


@on_torch_or_tf
@pytest.mark.usefixtures("every_weight_fused")
def test_fused_adam_makes_kerass_adam_update():
    _, keras_weights, keras_state, _ = _train_steps(fused=False)
    model, fused_weights, fused_state, _ = _train_steps(fused=True)
    assert type(model.optimizer).__name__ == "Adam"  # the class is Keras's own
    # One step: weights, moments and the step count as Keras's own Adam leaves them, within
    # 1e-5 of each tensor's scale (float32 rounding: the two kernels order the operations
    # differently); TensorFlow's kernel rounds 1 - beta_2 to 0.00099998713 where Keras has
    # 0.001, which moves the second moments by 1.3e-5 of themselves. Every weight moved, so
    # a wrong update could not hide.
    bound = 1.5e-5 if BACKEND == "tensorflow" else 1e-5
    for want, got in zip(keras_weights + keras_state, fused_weights + fused_state, strict=True):
        scale = max(float(np.max(np.abs(want))), 1e-12)
        assert float(np.max(np.abs(got - want))) <= bound * scale
    assert int(fused_state[0]) == 1


@on_torch_or_tf
@pytest.mark.usefixtures("every_weight_fused")
def test_fused_adam_trains_like_kerass_adam_over_a_schedule():
    *_, keras_losses = _train_steps(fused=False, steps=20)
    *_, fused_losses = _train_steps(fused=True, steps=20)
    np.testing.assert_allclose(fused_losses, keras_losses, rtol=1e-4)


@on_torch_or_tf
def test_fused_adam_only_for_plain_adam_and_accelerate_after_compile_applies_it():
    from zoo.training.compile import compile_model

    assert not _use_fused_adam(keras.optimizers.Adam(amsgrad=True))
    assert not _use_fused_adam(keras.optimizers.AdamW())
    assert not _use_fused_adam(keras.optimizers.SGD())
    # At 64x64 LeNet's fc1 has 376,320 weights, enough for TensorFlow's kernel to take it.
    model = compile_model(zoo.get_model("lenet5_modern", input_shape=(64, 64, 1)), "adam", 1e-3)
    assert FUSED_ADAM_METHOD not in vars(model.optimizer)  # compile stays plain Keras
    assert accelerate(model).optimizer == "fused adam"
    assert FUSED_ADAM_METHOD in vars(model.optimizer)
    assert "fused adam" in applied(model).describe()
    model = compile_model(zoo.get_model("lenet5_modern"), "sgd", 1e-3)
    assert accelerate(model).optimizer == "keras"
    assert FUSED_ADAM_METHOD not in vars(model.optimizer)
    if BACKEND == "tensorflow":  # at 28x28 no weight is that large: Keras's update throughout
        model = compile_model(zoo.get_model("lenet5_modern"), "adam", 1e-3)
        assert accelerate(model).optimizer == "keras"
        assert FUSED_ADAM_METHOD not in vars(model.optimizer)


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's fused Adam")
def test_tf_fused_adam_leaves_small_weights_sparse_gradients_and_strategies_to_keras(
    monkeypatch,
):
    import tensorflow as tf

    from zoo.accel import tf_adam

    assert not tf_adam.use_fused_adam(
        keras.optimizers.Adam(), tf.distribute.MirroredStrategy(["CPU:0"])
    )
    kernel, calls = tf.raw_ops.ResourceApplyAdam, []

    def counted(**arguments):
        calls.append(tuple(arguments["grad"].shape))
        return kernel(**arguments)

    monkeypatch.setattr(tf.raw_ops, "ResourceApplyAdam", counted)
    shapes = [(4, 2), (tf_adam.FUSED_MIN_SIZE // 4, 4)]  # one small weight, one large
    rows = tf.IndexedSlices(tf.constant([[1.0, -2.0], [0.5, 3.0]]), tf.constant([0, 2]), [4, 2])
    results = []
    for fused in (False, True):
        optimizer = keras.optimizers.Adam(0.1)
        if fused:
            assert tf_adam.use_fused_adam(optimizer)
        weights = [keras.Variable(np.ones(shape, "float32")) for shape in shapes]
        optimizer.apply([tf.ones(shape) for shape in shapes], weights)
        with pytest.MonkeyPatch.context() as every_dense_weight:
            every_dense_weight.setattr(tf_adam, "FUSED_MIN_SIZE", 0)
            optimizer.apply([rows], weights[:1])  # a sparse gradient: Keras's own update
        results.append([np.asarray(weight) for weight in weights])
    assert calls == [shapes[1]]  # the large weight's dense update, and nothing else
    np.testing.assert_array_equal(results[1][0], results[0][0])  # Keras's own code, exactly
    assert not np.allclose(results[0][1], 1.0)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-6)


# --------------------------------------------------------------------------- JAX pooling

RESHAPE_CASES = [((8, 28, 28, 6), 2), ((2, 10, 10, 16), 2), ((3, 7, 9, 5), 3), ((2, 6, 4, 3), 2)]


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("shape, size", RESHAPE_CASES)
def test_pooling_by_reshape_equals_kerass_pooling(kind, shape, size):
    from zoo.accel.jax_pooling import pool_by_reshape

    cls = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    reduce = keras.ops.max if kind == "max" else keras.ops.mean
    x = np.random.default_rng(2).standard_normal(shape).astype("float32")
    want = keras.ops.convert_to_numpy(cls(size, data_format="channels_last")(x))
    got = keras.ops.convert_to_numpy(
        pool_by_reshape(keras.ops.convert_to_tensor(x), (size,) * 2, reduce)
    )
    np.testing.assert_allclose(got, want, rtol=0, atol=0 if kind == "max" else 1e-6)


@pytest.mark.skipif(BACKEND != "jax", reason="used on JAX only")
@pytest.mark.parametrize("kind", ["max", "average"])
def test_pooling_by_reshape_has_kerass_gradients_on_jax(kind):
    import jax
    import jax.numpy as jnp

    from zoo.accel.jax_pooling import use_fast_pooling

    cls = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    keras_layer, fast_layer = cls(2), cls(2)
    assert use_fast_pooling(fast_layer)
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.standard_normal((4, 13, 12, 6)).astype("float32"))  # 13: a row dropped
    weights = jnp.asarray(rng.standard_normal((4, 6, 6, 6)).astype("float32"))
    grads = [
        jax.grad(lambda x, layer=layer: jnp.sum(layer(x) * weights))(x)
        for layer in (keras_layer, fast_layer)
    ]
    np.testing.assert_allclose(np.asarray(grads[1]), np.asarray(grads[0]), rtol=0, atol=1e-6)
    assert float(jnp.abs(grads[0]).sum()) > 0


def test_which_pools_change_on_jax():
    from zoo.accel.jax_pooling import _reshape_call, _slices_call, use_fast_pooling

    def call_of(layer):
        return layer.call.__func__ if use_fast_pooling(layer) else None

    assert call_of(keras.layers.MaxPooling2D(2)) is _reshape_call
    assert call_of(keras.layers.AveragePooling2D(2)) is _reshape_call
    assert call_of(keras.layers.MaxPooling2D(3, strides=2)) is _slices_call
    assert call_of(keras.layers.MaxPooling2D((2, 3), strides=(1, 4))) is _slices_call
    assert call_of(keras.layers.AveragePooling2D(3, strides=2)) is None  # Keras's mean
    assert call_of(keras.layers.MaxPooling2D(2, padding="same")) is None
    assert call_of(keras.layers.MaxPooling2D(2, data_format="channels_first")) is None
    assert call_of(keras.layers.GlobalMaxPooling2D()) is None


def test_on_a_gpu_jax_keeps_kerass_pooling(monkeypatch):
    """Only CPUs were measured: elsewhere every pooling layer keeps Keras's own call."""
    from zoo.accel import jax_pooling

    model = zoo.get_model("alexnet", input_shape=zoo.model_info("alexnet")["min_input_shape"])
    for layer in model.layers:
        vars(layer).pop("call", None)
    monkeypatch.setattr(jax_pooling, "on_cpu", lambda: False)
    assert jax_pooling.apply_to_model(model) == []
    assert not list(vars_with_own_call(model))
    monkeypatch.setattr(jax_pooling, "on_cpu", lambda: True)
    expected = ["pool1", "pool2", "pool5"] if BACKEND == "jax" else []
    assert sorted(jax_pooling.apply_to_model(model)) == expected


# (input shape, pool size, strides): AlexNet's 3x3/2 (55 -> 27, and 13 -> 6 with a row
# left over), a window wider than tall, strides larger than the window, stride 1
SLICES_CASES = [
    ((2, 55, 55, 4), (3, 3), (2, 2)),
    ((3, 13, 14, 5), (3, 3), (2, 2)),
    ((2, 9, 11, 3), (2, 3), (1, 2)),
    ((2, 10, 12, 3), (2, 2), (3, 4)),
    ((2, 6, 7, 2), (3, 2), (1, 1)),
]


@pytest.mark.skipif(BACKEND != "jax", reason="used on JAX only")
@pytest.mark.parametrize("inputs", ["normal", "after a ReLU", "small integers"])
@pytest.mark.parametrize("shape, size, strides", SLICES_CASES)
def test_max_pool_by_slices_has_kerass_values_and_gradients(inputs, shape, size, strides):
    """Keras's, ties included: ReLU zeros and repeated integers tie in many windows, and the
    gradient must go to the entry Keras's does, not be shared among the tied ones."""
    import jax
    import jax.numpy as jnp

    from zoo.accel.jax_max_pool import max_pool

    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype("float32")
    if inputs == "after a ReLU":
        x = np.maximum(x, 0)
    elif inputs == "small integers":
        x = rng.integers(0, 3, shape).astype("float32")
    layer = keras.layers.MaxPooling2D(size, strides=strides)
    weights = jnp.asarray(rng.standard_normal(layer.compute_output_shape(shape)), "float32")

    def keras_pool(x):
        return layer(x)

    def fast_pool(x):
        return max_pool(x, size, strides)

    for pool in (keras_pool, fast_pool):
        assert pool(jnp.asarray(x)).shape == layer.compute_output_shape(shape)
    np.testing.assert_array_equal(np.asarray(fast_pool(x)), np.asarray(keras_pool(x)))
    grads = [
        np.asarray(jax.jit(jax.grad(lambda x, pool=pool: jnp.sum(pool(x) * weights)))(x))
        for pool in (keras_pool, fast_pool)
    ]
    # The same entries get gradient (ties go where Keras sends them); an entry in two windows
    # sums its shares in another order, so the sum may differ in the last bit.
    np.testing.assert_array_equal(grads[1] != 0, grads[0] != 0)
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6, atol=1e-6)
    overlapping = any(k > s for k, s in zip(size, strides, strict=True))
    shared = np.count_nonzero(grads[0]) < np.prod(weights.shape)  # some entry took two shares
    assert np.count_nonzero(grads[0]) > 0 and (shared or not overlapping or inputs == "normal")


@pytest.mark.skipif(BACKEND != "jax", reason="used on JAX only")
def test_alexnet_trains_as_with_kerass_pooling_on_jax():
    """One training step of AlexNet's feature layers with the fast pools and with Keras's:
    the same loss and the same weights after it."""
    from zoo.accel import jax_pooling

    def trained(fast):
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [
                keras.Input((31, 31, 3)),
                keras.layers.Conv2D(8, 5, strides=2, activation="relu"),
                keras.layers.MaxPooling2D(3, strides=2),
                keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
                keras.layers.MaxPooling2D(3, strides=2),
                keras.layers.Flatten(),
                keras.layers.Dense(4),
            ]
        )
        changed = jax_pooling.apply_to_model(model) if fast else []
        assert len(changed) == (2 if fast else 0)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        rng = np.random.default_rng(6)
        x, y = rng.random((16, 31, 31, 3), dtype="float32"), rng.integers(0, 4, 16)
        loss = model.train_on_batch(x, y)
        return loss, [np.asarray(w) for w in model.get_weights()]

    (keras_loss, keras_weights), (fast_loss, fast_weights) = trained(False), trained(True)
    assert fast_loss == keras_loss
    for fast, want in zip(fast_weights, keras_weights, strict=True):
        np.testing.assert_allclose(fast, want, rtol=0, atol=1e-7)
