"""Everything that patches Keras or the process, so the rest of the zoo stays plain Keras.

The models, weights, data, training and deploy folders build and use plain
``keras.Model`` objects. The speed-ups that make them fast on one backend
(JAX pooling by reshape, PyTorch's channels-last pooling, the bias inside the
convolution, the lean training step, fused Adam) and the convolution
implementation chosen per layer live here, as do the process settings a
``zoo-train`` run makes before Keras starts (:mod:`zoo.accel.runtime`).
"""
