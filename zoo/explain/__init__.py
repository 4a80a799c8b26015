"""Teaching: the NumPy reference of every layer ([`zoo.explain.reference`][]), worked
examples on Keras and NumPy ([`zoo.explain.demos`][]), per-layer costs
([`zoo.explain.anatomy`][]), figures ([`zoo.explain.viz`][]) and the convolution
animation ([`zoo.explain.animation`][]). Uses only the core modules and the models."""
