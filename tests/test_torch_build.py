"""PyTorch: a model's metrics, loss and optimizer built from one real image (zoo.accel.torch_build)
train and evaluate exactly as Keras's build on the meta device does, without TorchDynamo."""

import keras
import numpy as np
import pytest
from conftest import python_lines

import zoo
from zoo.training.compile import compile_model

BACKEND = keras.backend.backend()
pytestmark = pytest.mark.skipif(BACKEND != "torch", reason="a PyTorch-only speed-up")


def _model(name, one_image, label_smoothing=0.0):
    shape = zoo.model_info(name)["min_input_shape"]
    keras.utils.set_random_seed(0)
    model = zoo.get_model(name, input_shape=shape, classes=10)
    compile_model(model, "adam", 1e-3, label_smoothing=label_smoothing)
    assert "_symbolic_build" in vars(model)  # the zoo's builder gave it the one-image build
    if not one_image:
        del vars(model)["_symbolic_build"]  # back to Keras's own
    rng = np.random.default_rng(1)
    x = rng.random((48, *shape), dtype=np.float32)
    y = rng.integers(0, 10, 48)
    return model, x, np.eye(10, dtype="float32")[y] if label_smoothing else y


@pytest.mark.parametrize("name, smoothing", [("lenet5_modern", 0.1), ("alexnet", 0.0)])
def test_fit_after_a_one_image_build_trains_exactly_as_after_kerass(name, smoothing):
    # AlexNet has dropout: the build must draw no random numbers the training would have drawn.
    results = []
    for one_image in (True, False):
        model, x, y = _model(name, one_image, smoothing)
        history = model.fit(
            x, y, batch_size=16, epochs=2, verbose=0, validation_data=(x[:16], y[:16])
        )
        results.append((model.get_weights(), history.history, model.optimizer.iterations.numpy()))
    (built, built_history, steps), (kept, kept_history, kept_steps) = results
    assert built_history == kept_history and steps == kept_steps == 6
    assert set(built_history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for ours, theirs in zip(built, kept, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_evaluate_first_gives_kerass_scores_and_the_build_leaves_no_count():
    import torch

    scores = []
    for one_image in (True, False):
        model, x, y = _model("lenet5_modern", one_image)
        scores.append(model.evaluate(x, y, batch_size=16, verbose=0, return_dict=True))
    assert scores[0] == scores[1]
    # The one image goes through the metrics to build them; none of its counts may stay
    # for a caller that does not reset them, as fit and evaluate do.
    model, x, y = _model("lenet5_modern", one_image=True)
    model._symbolic_build(data_batch=(torch.from_numpy(x[:8]), torch.from_numpy(y[:8])))
    counts = [v for m in model.metrics for v in m.variables if v.name == "count"]
    assert model.optimizer.built and len(counts) == 2
    assert all(float(keras.ops.convert_to_numpy(v)) == 0 for v in counts)


def test_a_zoo_run_fits_evaluates_and_predicts_without_importing_torchdynamo():
    code = (
        "import sys, numpy as np\n"
        "from zoo.accel.runtime import import_keras_lean, tensorflow_left_alone\n"
        "keras = import_keras_lean()\n"
        "import zoo\n"
        "from zoo.accel import accelerate\n"
        "from zoo.training.compile import compile_model\n"
        "with tensorflow_left_alone('torch'):\n"
        "    model = zoo.get_model('lenet5_modern')\n"
        "    compile_model(model, 'adam', 1e-3, label_smoothing=0.1)\n"
        "    banner = accelerate(model).describe()\n"
        "    x = np.random.rand(64, 28, 28, 1).astype('float32')\n"
        "    y = np.eye(10, dtype='float32')[np.arange(64) % 10]\n"
        "    model.fit(x, y, batch_size=32, epochs=1, verbose=0)\n"
        "    model.evaluate(x, y, verbose=0)\n"
        "    model.predict(x, verbose=0)\n"
        "dynamo = sys.modules.get('torch._dynamo')\n"
        "print(dynamo is not None and type(dynamo).__name__ == 'module')\n"
        "print(banner)\n"
    )
    loaded, banner = python_lines(code, "torch")[-2:]
    assert loaded == "False"  # Keras's meta-device build would have imported it
    assert banner.endswith("state built from one image")


def test_models_it_cannot_build_exactly_keep_kerass_build():
    from zoo.accel.torch_build import build_from_one_image, use_build_from_one_image

    class Own(keras.Model):
        def _symbolic_build(self, iterator=None, data_batch=None):
            return super()._symbolic_build(iterator=iterator, data_batch=data_batch)

    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(inputs)
    assert not use_build_from_one_image(Own(inputs, outputs))  # a class with its own build
    sequential = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert not use_build_from_one_image(sequential) and "_symbolic_build" not in vars(sequential)
    plain = keras.Model(inputs, outputs)
    plain.compile("adam", "mse")
    assert use_build_from_one_image(plain)
    x = np.ones((3, 4), "float32")
    build_from_one_image(plain, data_batch=(x, x[:, :2]))  # NumPy: Keras's own build does it
    assert plain.optimizer.built
