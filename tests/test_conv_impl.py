"""zoo.accel.conv on this backend: every convolution implementation computes what Keras's native
Conv2D and the NumPy reference compute (forward and gradients, within 1e-5 of the scale),
saved models stay plain Keras, and ``--conv-impl`` / ``auto`` / the setting behave."""

import itertools
import json
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
from conftest import (
    BACKENDS,
    assert_close_to_reference,
    installed,
    numpy_forward,
    set_fixed_weights,
)

import zoo
from zoo import shapes
from zoo.accel import conv
from zoo.cli import zoo_train as main
from zoo.deploy import export as exporting
from zoo.errors import EXIT_BAD_INPUT, ZooError
from zoo.explain import reference
from zoo.training import config

BACKEND = keras.backend.backend()
TOL = 1e-5

CHANNELS = [(1, 6), (6, 16), (3, 8)]  # (C_in, C_out)
# (kernel, stride, dilation); Keras refuses a stride above 1 together with a dilation above 1.
GEOMETRIES = [(5, 1, 1), (5, 2, 1), (3, 4, 1), (11, 4, 1), (3, 1, 2), (5, 1, 2)]
PADDINGS = ["same", "valid"]


def numpy_gradients(x, kernel, upstream, stride, padding, dilation):
    """Gradients of ``sum(conv2d(x, kernel) * upstream)`` for ``x`` and ``kernel``, in float64,
    by the definition: output pixel (h, w) is its input window times the kernel, so it sends
    ``upstream[:, h, w]`` times the kernel back to that window, and the window times
    ``upstream[:, h, w]`` to the kernel."""
    x, kernel, upstream = (np.asarray(a, dtype=np.float64) for a in (x, kernel, upstream))
    kh, kw = kernel.shape[:2]
    pads = [
        (0, 0)
        if padding == "valid"
        else shapes.same_padding(x.shape[1 + a], kernel.shape[a], stride, dilation)
        for a in range(2)
    ]
    padded = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    d_padded, d_kernel = np.zeros_like(padded), np.zeros_like(kernel)
    for h in range(upstream.shape[1]):
        for w in range(upstream.shape[2]):
            rows = slice(h * stride, h * stride + dilation * (kh - 1) + 1, dilation)
            cols = slice(w * stride, w * stride + dilation * (kw - 1) + 1, dilation)
            d_kernel += np.einsum("nijc,no->ijco", padded[:, rows, cols], upstream[:, h, w])
            d_padded[:, rows, cols] += np.einsum("no,ijco->nijc", upstream[:, h, w], kernel)
    top, left = pads[0][0], pads[1][0]
    return d_padded[:, top : top + x.shape[1], left : left + x.shape[2]], d_kernel


def forward_and_gradients(layer, x, upstream):
    """The layer's output and the gradients of ``sum(output * upstream)`` for the input, the
    kernel and the bias, by this backend's own automatic differentiation; NumPy float32."""
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        def loss(weights, x):
            out = layer.stateless_call(weights, [], x)[0]
            return jnp.sum(out * upstream), out

        weights = [v.value for v in layer.trainable_variables]
        grad = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))  # one compilation
        ((d_kernel, d_bias), d_x), out = grad(weights, jnp.asarray(x))
    elif BACKEND == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
            loss = tf.reduce_sum(out * upstream)
        d_kernel, d_bias, d_x = tape.gradient(loss, [layer.kernel, layer.bias, x])
    else:
        import torch

        x = torch.from_numpy(x).requires_grad_(True)
        out = layer(x)
        loss = (out * torch.from_numpy(upstream)).sum()
        d_kernel, d_bias, d_x = torch.autograd.grad(loss, [layer.kernel.value, layer.bias.value, x])
    return [keras.ops.convert_to_numpy(t) for t in (out, d_x, d_kernel, d_bias)]


def make_layer(c_in, c_out, kernel, stride, dilation, padding, input_shape):
    layer = keras.layers.Conv2D(
        c_out, kernel, strides=stride, padding=padding, dilation_rate=dilation
    )
    layer.build(input_shape)
    rng = np.random.default_rng(c_in * 100 + kernel)
    fan_in = kernel * kernel * c_in
    layer.set_weights(
        [
            (rng.standard_normal((kernel, kernel, c_in, c_out)) / np.sqrt(fan_in)).astype(
                "float32"
            ),
            rng.standard_normal(c_out).astype("float32"),
        ]
    )
    return layer


# Every geometry with both paddings, the channel pairs taking turns: 12 cases.
CASES = [
    (*CHANNELS[i % len(CHANNELS)], *geometry, padding)
    for i, (geometry, padding) in enumerate(itertools.product(GEOMETRIES, PADDINGS))
]


@pytest.mark.parametrize("c_in, c_out, kernel, stride, dilation, padding", CASES)
def test_every_impl_equals_native_and_the_numpy_reference(
    c_in, c_out, kernel, stride, dilation, padding
):
    # Not square, so height and width cannot be swapped unnoticed; with a stride, "same" pads
    # both unevenly (e.g. 1 before and 2 after for 5x5 stride 2), so the sides cannot be either.
    # Six images: "chunked" convolves a chunk of four, then the two left over.
    shape = (conv.CHUNK + 2, 14, 12, c_in)
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype("float32")
    layer = make_layer(c_in, c_out, kernel, stride, dilation, padding, shape)
    w, b = layer.get_weights()
    expected = reference.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation)
    upstream = rng.standard_normal(expected.shape).astype("float32")
    d_x, d_kernel = numpy_gradients(x, w, upstream, stride, padding, dilation)
    d_bias = upstream.astype(np.float64).sum(axis=(0, 1, 2))

    results = {}
    for impl in ("native", "im2col", "taps", "chunked"):
        assert conv.apply_conv_impl(layer, impl) == impl == conv.layer_conv_impl(layer)
        assert type(layer) is keras.layers.Conv2D
        results[impl] = forward_and_gradients(layer, x, upstream)
        for got, want in zip(results[impl], (expected, d_x, d_kernel, d_bias), strict=True):
            assert_close_to_reference(got, want, TOL)
    for impl in ("im2col", "taps", "chunked"):
        for native, other in zip(results["native"], results[impl], strict=True):
            assert_close_to_reference(other, native, TOL)


def test_auto_on_an_unbuilt_layer_chooses_when_it_sees_its_input(monkeypatch):
    x = np.random.default_rng(0).standard_normal((2, 14, 14, 6)).astype("float32")
    layer = keras.layers.Conv2D(16, 5)
    entry = conv.shape_class(6, layer)
    monkeypatch.setitem(conv.AUTO_TABLE, BACKEND, {entry: "im2col"})
    assert conv.apply_conv_impl(layer, "auto") == "auto" == conv.layer_conv_impl(layer)
    calls, im2col = [], conv.conv2d_im2col
    monkeypatch.setattr(conv, "conv2d_im2col", lambda *a: calls.append(1) or im2col(*a))
    out = keras.ops.convert_to_numpy(layer(x))
    assert calls, "auto did not run im2col where the table says so"
    w, b = layer.get_weights()
    assert_close_to_reference(out, reference.conv2d(x, w, b), TOL)


@pytest.mark.parametrize("impl", ["im2col", "taps", "chunked"])
def test_unknown_height_and_width_fall_back_to_the_native_kernel(impl):
    inputs = keras.Input((None, None, 3))
    layer = keras.layers.Conv2D(4, 3, padding="same")
    model = keras.Model(inputs, layer(inputs))
    conv.apply_conv_impl(layer, impl)
    x = np.random.default_rng(1).standard_normal((2, 9, 7, 3)).astype("float32")
    w, b = layer.get_weights()
    expected = reference.conv2d(x, w, b, padding="same")
    assert_close_to_reference(model.predict(x, verbose=0), expected, TOL)


def test_the_function_alone_takes_ints_like_keras_ops_conv():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 9, 8, 3)).astype("float32")
    kernel = (rng.standard_normal((3, 3, 3, 4)) / 3).astype("float32")
    out = conv.conv2d_im2col(x, kernel, 2, "same", 1)
    native = keras.ops.conv(x, kernel, 2, "same")
    assert_close_to_reference(out, keras.ops.convert_to_numpy(native), TOL)
    assert_close_to_reference(out, reference.conv2d(x, kernel, stride=2, padding="same"), TOL)


def test_grouped_layers_stay_native():
    layer = keras.layers.Conv2D(8, 3, groups=2)
    layer.build((1, 9, 9, 4))
    assert conv.apply_conv_impl(layer, "im2col") == "native" == conv.layer_conv_impl(layer)


# --------------------------------------------------------------------------- models and files


@pytest.fixture(scope="module")
def im2col_model_file(tmp_path_factory):
    """lenet5_modern built under im2col with fixed weights, its predictions and its file."""
    folder = tmp_path_factory.mktemp("im2col")
    keras.utils.set_random_seed(0)
    with zoo.conv_impl("im2col"):
        model = zoo.get_model("lenet5_modern")
    set_fixed_weights(model)
    x = np.random.default_rng(3).random((8, 28, 28, 1), dtype=np.float32)
    path = folder / "model.keras"
    model.save(path)
    return model, x, model.predict(x, verbose=0), path


def test_a_model_built_under_im2col_saves_as_plain_keras(im2col_model_file):
    model, x, predicted, path = im2col_model_file
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [conv.layer_conv_impl(layer) for layer in convs] == ["im2col", "im2col"]
    assert all(type(layer) is keras.layers.Conv2D for layer in convs)
    assert_close_to_reference(predicted, numpy_forward(model, x), TOL)

    saved = json.loads(zipfile.ZipFile(path).read("config.json"))
    saved_convs = [c for c in saved["config"]["layers"] if c["name"].startswith("conv")]
    assert [(c["module"], c["class_name"]) for c in saved_convs] == [("keras.layers", "Conv2D")] * 2
    assert "im2col" not in json.dumps(saved)

    loaded = keras.saving.load_model(path)
    loaded_convs = [layer for layer in loaded.layers if layer.name.startswith("conv")]
    assert all(type(layer) is keras.layers.Conv2D for layer in loaded_convs)
    assert [conv.layer_conv_impl(layer) for layer in loaded_convs] == ["native", "native"]
    assert_close_to_reference(loaded.predict(x, verbose=0), predicted, TOL)


def test_the_saved_file_loads_where_zoo_cannot_be_imported(im2col_model_file, tmp_path):
    _, x, predicted, path = im2col_model_file
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys\n"
        "sys.modules['zoo'] = None  # any import of zoo fails\n"
        "import keras, numpy as np\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0))\n"
    )
    out = tmp_path / "out.npy"
    subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "x.npy"), str(out)],
        check=True,
        timeout=300,
    )
    assert_close_to_reference(np.load(out), predicted, TOL)


def test_every_impl_trains_like_the_native_one():
    x = np.random.default_rng(4).random((32, 28, 28, 1), dtype=np.float32)
    y = np.arange(32) % 10
    losses = {}
    for impl in ("native", "im2col", "taps", "chunked"):
        with zoo.conv_impl(impl):
            model = zoo.get_model("lenet5_modern")
        set_fixed_weights(model)
        model.compile(keras.optimizers.SGD(0.05), "sparse_categorical_crossentropy")
        history = model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        losses[impl] = history.history["loss"]
    np.testing.assert_allclose(losses["im2col"], losses["native"], rtol=1e-4)
    np.testing.assert_allclose(losses["taps"], losses["native"], rtol=1e-4)
    np.testing.assert_allclose(losses["chunked"], losses["native"], rtol=1e-4)


exporter = exporting.EXPORTER.get(("onnx", BACKEND))


@pytest.mark.skipif(
    not all(installed(m) for m in (exporter, "onnx", "onnxruntime")),
    reason=f"needs {exporter}, onnx and onnxruntime",
)
def test_a_model_built_under_im2col_exports_to_onnx(tmp_path):
    with zoo.conv_impl("im2col"):
        model = zoo.get_model("lenet5_modern", classes=5)
    report = exporting.export(model, "onnx", tmp_path / "lenet.onnx")
    assert report["max_abs_difference"] <= exporting.TOLERANCE


# --------------------------------------------------------------------------- choosing


def test_the_setting_and_its_errors():
    impls = ("auto", "native", "im2col", "taps", "chunked")
    assert conv.CONV_IMPLS == config.CONV_IMPLS == impls
    assert zoo.get_conv_impl() == "auto"
    with zoo.conv_impl("im2col"):
        assert zoo.get_conv_impl() == "im2col"
        with pytest.raises(RuntimeError), zoo.conv_impl("native"):
            raise RuntimeError
        assert zoo.get_conv_impl() == "im2col"
    assert zoo.get_conv_impl() == "auto"
    message = (
        "Unknown convolution implementation 'fast'. "
        "Use one of: 'auto', 'native', 'im2col', 'taps', 'chunked'."
    )
    with pytest.raises(ZooError) as error:
        zoo.set_conv_impl("fast")
    assert str(error.value) == message
    with pytest.raises(ZooError):
        conv.apply_conv_impl(keras.layers.Conv2D(1, 1), "fast")
    assert zoo.get_conv_impl() == "auto"


def test_the_table_is_well_formed():
    assert set(conv.AUTO_TABLE) <= set(BACKENDS)
    for entries in conv.AUTO_TABLE.values():
        for (bucket, kernel, stride), impl in entries.items():
            assert impl in conv.CONV_IMPLS and impl != "auto"
            assert isinstance(kernel, int) and isinstance(stride, int)
            low = bucket.rstrip("+").split("-")[0]
            assert conv.shape_class(int(low), keras.layers.Conv2D(1, kernel, strides=stride)) == (
                bucket,
                kernel,
                stride,
            )


def test_auto_resolves_every_zoo_convolution_per_the_table():
    with zoo.conv_impl("auto"):
        models = [zoo.get_model("lenet5_modern"), zoo.alexnet(include_top=False)]
    table = conv.AUTO_TABLE.get(BACKEND, {})
    for model in models:
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D):
                key = conv.shape_class(layer.kernel.shape[2], layer)
                assert conv.layer_conv_impl(layer) == table.get(key, "native"), layer.name


def test_auto_uses_the_table_entry_and_native_elsewhere(monkeypatch):
    monkeypatch.setitem(conv.AUTO_TABLE, BACKEND, {("5-16", 5, 1): "im2col"})
    with zoo.conv_impl("auto"):
        model = zoo.get_model("lenet5_modern")
    impls = conv.apply_to_model(model, "auto")
    assert impls == {"conv1": "native", "conv2": "im2col"}  # conv1 is ("1-4", 5, 1)
    monkeypatch.setattr(conv, "on_cpu", lambda: False)  # the table holds CPU measurements
    assert conv.apply_to_model(model, "auto") == {"conv1": "native", "conv2": "native"}
    assert conv.apply_to_model(model, "im2col") == {"conv1": "im2col", "conv2": "im2col"}


# --------------------------------------------------------------------------- zoo-train


def test_zoo_train_conv_impl_im2col_on_the_digits(tmp_path, monkeypatch):
    traced = []
    im2col = conv.conv2d_im2col
    monkeypatch.setattr(conv, "conv2d_im2col", lambda *a: traced.append(1) or im2col(*a))
    argv = ["--model", "lenet5_modern", "--epochs", "1", "--limit", "64", "--conv-impl", "im2col"]
    assert main([*argv, "--output", str(tmp_path), "--quiet"]) == 0
    assert traced, "zoo-train --conv-impl im2col did not run im2col"
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs_completed"] == 1
    saved = keras.saving.load_model(tmp_path / "model.keras")
    assert type(saved.get_layer("conv1")) is keras.layers.Conv2D


def test_a_bad_conv_impl_is_one_error_line(tmp_path, capsys):
    code = main(["--conv-impl", "fast", "--output", str(tmp_path / "out")])
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    expected = "--conv-impl must be one of auto, native, im2col, taps, chunked, got 'fast'."
    assert err == f"zoo-train: error: {expected}\n"
    assert not (tmp_path / "out").exists()
