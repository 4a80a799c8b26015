"""LeNet-5's presets: weights the zoo's own recipe trained on the digits and on MNIST.

`"digits"`: trained on scikit-learn's 8x8 handwritten digits, resized to 28x28, which the
package carries, so every backend has a trained LeNet-5 to look inside without a download.

`"mnist"`: trained on real MNIST, as LeCun et al. (1998) did, but on the 10,000 images of its
test set (t10k), the one MNIST this project keeps (outside the package, at
`../shared/data/mnist-t10k` from the repository's root; the package never carries it): the
first 8,000 to train, with `--augment digits` (turned, scaled, shifted, thicker and thinner
strokes) so that the models also read digits people draw, and the last 2,000 held out to
test, the split `zoo-train` makes of a folder holding a test set alone. MNIST is by Yann
LeCun and Corinna Cortes (with Christopher J. C. Burges), licensed CC BY-SA 3.0. Its inputs are
prepared as MNIST's were: [`zoo.preprocess_digit`][zoo.data.digit.preprocess_digit] for a photo
or drawing of a digit.

`make weights` ([`zoo.training.presets.make_presets`][]) trains each one again with its
`training` and checks the file's SHA-256 and the test accuracy against what is declared here.
"""

from zoo.weights.presets.declaration import Preset

DIGITS_INPUT = "gray digits in [0, 1], ink bright, resized to 28x28 (zoo.data.prepare_arrays)"
MADE_BY = "make weights (zoo.training.presets.make_presets) on Keras 3.15.1, backend jax"
MNIST_INPUT = (
    "MNIST's 28x28 gray digits in [0, 1], ink bright on a dark background, the digit fit in "
    "20x20 and centred by its mass: zoo.preprocess_digit(image) for a photo or drawing"
)
MNIST_MADE_BY = MADE_BY + ", from MNIST (CC BY-SA 3.0: Yann LeCun and Corinna Cortes)"
MNIST_T10K = "../shared/data/mnist-t10k"  # from the repository's root; never in the package

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
    Preset(
        model="lenet5",
        name="mnist",
        file="lenet5-mnist.weights.h5",
        sha256="bebf00deb0800615fe85e978ae9c36e87f1018fd284c2433264e6b807e6b190b",
        dataset="mnist-t10k",
        data_path=MNIST_T10K,
        test_accuracy=0.98,
        input_shape=(28, 28, 1),
        classes=10,
        preprocessing=MNIST_INPUT,
        prepare="digit",
        made_by=MNIST_MADE_BY,
        # The model's recipe (Adam at 3e-3, batch 32, 30 epochs) with a warm-up-cosine
        # schedule. All 8,000 images train; the last 2,000 test.
        training=dict(
            seed=0,
            epochs=30,
            schedule="warmup-cosine",
            validation_split=0.0,
            augment="digits",
            conv_impl="native",
        ),
    ),
    Preset(
        model="lenet5_modern",
        name="mnist",
        file="lenet5_modern-mnist.weights.h5",
        sha256="fdacc496c7af99bc4ee5aa81321fc4934fc0a323a4e47f82bb94e4ecdf352e51",
        dataset="mnist-t10k",
        data_path=MNIST_T10K,
        test_accuracy=0.987,
        input_shape=(28, 28, 1),
        classes=10,
        preprocessing=MNIST_INPUT,
        prepare="digit",
        made_by=MNIST_MADE_BY,
        # The model's recipe (warm-up-cosine at 3e-3, label smoothing 0.1, batch 64) for
        # longer: augmented images take more epochs to fit (20 left typeset 1s and 6s misread
        # in tests/test_predict_digits.py). All 8,000 images train; the last 2,000 test.
        training=dict(
            seed=0,
            epochs=40,
            validation_split=0.0,
            augment="digits",
            conv_impl="native",
        ),
    ),
)
