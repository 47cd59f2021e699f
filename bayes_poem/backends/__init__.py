"""Sampling backends: compiled log-density kernels and the adapter that samples them.

``nutpie_adapter`` turns any kernel's C callbacks and float64 buffer into a nutpie
model (the one place that touches nutpie's non-exported model class);
``arm_density`` and ``normal_density`` are the numba kernels of the trials'
meta-analysis models (the core model's kernel is :mod:`bayes_poem.backends.density`).
"""
