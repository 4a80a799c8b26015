"""Teaching: the NumPy reference of every layer (:mod:`~zoo.explain.reference`), worked
examples on Keras and NumPy (:mod:`~zoo.explain.demos`), per-layer costs
(:mod:`~zoo.explain.anatomy`), figures (:mod:`~zoo.explain.viz`) and the convolution
animation (:mod:`~zoo.explain.animation`). Uses only the core modules and the models."""
