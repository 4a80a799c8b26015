"""JAX: `predict`'s forward pass, compiled for inference, gives Keras's numbers.

zoo.accel.jax_predict: Keras's pooling instead of the reshape, XLA's library fusions
limited to matrix products.
"""

import keras
import numpy as np
import pytest

import zoo

pytestmark = pytest.mark.skipif(keras.backend.backend() != "jax", reason="a JAX-only speed-up")

RNG = np.random.default_rng(0)


def keras_predict(model, x, **options):
    return type(model).predict(model, x, **options)


def test_lenet_and_overlapping_pools_give_kerass_numbers():
    from zoo.accel import applied

    model = keras.Sequential(
        [
            keras.Input((12, 12, 2)),
            keras.layers.Conv2D(3, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.AveragePooling2D(2),
            keras.layers.MaxPooling2D(3, strides=1),
            keras.layers.Flatten(),
            keras.layers.Dense(4),
        ]
    )
    zoo.accel.accelerate(model)
    assert applied(model).pooling and applied(model).predict == "lean"
    x = RNG.standard_normal((37, 12, 12, 2)).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, batch_size=16, verbose=0),
        keras_predict(model, x, batch_size=16, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )
    lenet = zoo.get_model("lenet5_modern")
    digits = RNG.random((300, 28, 28, 1), dtype="float32")
    np.testing.assert_allclose(
        lenet.predict(digits, batch_size=128, verbose=0),
        keras_predict(lenet, digits, batch_size=128, verbose=0),
        rtol=1e-5,
        atol=1e-6,
    )


def test_the_forward_pass_pools_as_keras_and_training_still_by_reshape():
    import jax

    from zoo.accel import jax_predict

    lenet = zoo.get_model("lenet5_modern")
    values = [v.value for v in lenet.trainable_variables], []
    x = np.zeros((4, 28, 28, 1), "float32")
    forward = jax_predict.forward_function(lenet)
    assert "reduce_window" in forward.lower(*values, x).as_text()
    # the model's own call, as the training step traces it, still pools by reshape
    own_call = jax.jit(lambda t, n, x: lenet.stateless_call(t, n, x, training=True)[0])
    assert "reduce_window" not in own_call.lower(*values, x).as_text()


def test_library_fusions_are_limited_to_matrix_products_on_this_cpu():
    import jax

    from zoo.accel import jax_predict

    options = jax_predict.compiler_options()
    if options is None:
        pytest.skip(f"the options apply to jaxlib {jax_predict.OPTIONS_JAXLIB} on a CPU only")
    layers = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(6, 5, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(2),
        ]
    )
    zoo.accel.accelerate(layers, conv_impl="taps")  # LeNet's first layer: a sum of 25 taps
    x = np.ones((128, 28, 28, 1), "float32")
    values = [v.value for v in layers.trainable_variables], []

    def compiled_text(**jit_options):
        function = jax.jit(lambda t, n, x: layers.stateless_call(t, n, x)[0], **jit_options)
        return function.lower(*values, x).compile().as_text()

    assert "ynn_fusion" not in compiled_text(compiler_options=options)
    forward = jax_predict.forward_function(layers)
    assert "ynn_fusion" not in forward.lower(*values, x).compile().as_text()
    if "ynn_fusion" not in compiled_text():  # XLA's default here (2 AVX2 cores): the library
        pytest.skip("XLA gave this CPU's taps and pool to no library: the option changed nothing")


def test_predict_inside_fit_sees_the_weights_of_that_step():
    model = zoo.get_model("lenet5_modern", input_shape=(28, 28, 1), classes=3)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    x = RNG.random((64, 28, 28, 1), dtype="float32")
    y = RNG.integers(0, 3, 64)
    seen = []

    class PredictAtSecondStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):  # the weights are out of the model here
            if batch == 1:
                lean = model.predict(x[:8], verbose=0)
                seen.append((lean, keras_predict(model, x[:8], verbose=0)))

    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[PredictAtSecondStep()])
    for lean, reference in seen:
        np.testing.assert_allclose(lean, reference, rtol=1e-5, atol=1e-6)
    assert not np.allclose(seen[0][0], seen[1][0])  # the second epoch changed the weights
    after = model.predict(x[:8], verbose=0)
    assert not np.allclose(after, seen[1][0])  # and so did the steps after the second
    np.testing.assert_allclose(after, keras_predict(model, x[:8], verbose=0), rtol=1e-5, atol=1e-6)


def test_a_new_choice_of_convolution_traces_the_forward_pass_again():
    from zoo.accel import accelerate, applied, jax_predict

    lenet = zoo.get_model("lenet5_modern")
    x = RNG.random((5, 28, 28, 1), dtype="float32")
    lenet.predict(x, verbose=0)
    before = jax_predict.forward_function(lenet)
    accelerate(lenet, conv_impl="native")
    assert set(applied(lenet).conv.values()) == {"native"}
    assert jax_predict.forward_function(lenet) is not before
    native = lenet.predict(x, verbose=0)
    text = (
        jax_predict.forward_function(lenet)
        .lower([v.value for v in lenet.trainable_variables], [], x)
        .as_text()
    )
    assert text.count("convolution") >= 2  # both layers now run XLA's own kernel
    np.testing.assert_allclose(native, keras_predict(lenet, x, verbose=0), rtol=1e-5, atol=1e-6)
