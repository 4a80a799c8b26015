"""LeNet-5's presets: weights the zoo's own recipe trained on the embedded digits.

LeCun et al. (1998) trained on MNIST, which the package does not carry; these are trained on
scikit-learn's 8x8 handwritten digits, resized to 28x28, which it does, so every backend has
a trained LeNet-5 to look inside without a download. ``make weights``
(:func:`zoo.training.presets.make_presets`) trains each one again with its ``training`` and
checks the file's SHA-256 and the test accuracy against what is declared here.
"""

from zoo.weights.presets.declaration import Preset

DIGITS_INPUT = "gray digits in [0, 1], ink bright, resized to 28x28 (zoo.data.prepare_arrays)"
MADE_BY = "make weights (zoo.training.presets.make_presets) on Keras 3.15.1, backend jax"

PRESETS = (
    Preset(
        model="lenet5",
        name="digits",
        file="lenet5-digits.weights.h5",
        sha256="beefd1bad658df7c5e19956235c4a0d0d57d5d3e8eb505ae5541360684f38afe",
        dataset="digits",
        test_accuracy=0.9721,
        input_shape=(28, 28, 1),
        classes=10,
        preprocessing=DIGITS_INPUT,
        made_by=MADE_BY,
        # The native convolution: the faster formulas of conv_impl="auto" agree with it only
        # to about 1e-6, and training amplifies the difference.
        training=dict(seed=0, conv_impl="native"),
    ),
    Preset(
        model="lenet5_modern",
        name="digits",
        file="lenet5_modern-digits.weights.h5",
        sha256="cd7e064e9e600dc85e559f46310c1081fea72d88ce57c1ab9f85e41f247441ae",
        dataset="digits",
        test_accuracy=0.9526,
        input_shape=(28, 28, 1),
        classes=10,
        preprocessing=DIGITS_INPUT,
        made_by=MADE_BY,
        # The 15 constant-rate, unsmoothed epochs this preset was made with: the model's recipe
        # has since become a 5-epoch warm-up-cosine one tuned for MNIST. The file was written
        # again when the JAX max pooling by reshape (zoo.accel.jax_pooling), which shares a
        # tied maximum's gradient, came in; the test accuracy stayed the same.
        training=dict(
            seed=0,
            epochs=15,
            batch_size=64,
            learning_rate=1e-3,
            schedule="constant",
            label_smoothing=0.0,
            conv_impl="native",
        ),
    ),
)
