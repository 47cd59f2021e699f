"""Backends: what builds and runs a :class:`~bayes_poem.spec.ModelSpec`, and the trials' kernels.

The spec describes a model; the modules here build it. ``density`` is the core
model's numba kernel; ``compiled`` packs a spec into its buffer and layouts and
makes the nutpie model; ``pymc_model`` builds the PyMC reference model;
``nutpie_adapter`` turns any kernel's C callbacks and float64 buffer into a nutpie
model (the one place that touches nutpie's non-exported model class);
``arm_density`` and ``normal_density`` are the numba kernels of the trials'
meta-analysis models, ``_kernel`` what every kernel's buffer shares. No module here
imports :mod:`bayes_poem.spec` at run time (type checking only).
"""
