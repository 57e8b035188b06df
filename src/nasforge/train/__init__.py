"""Training: gradient descent (``trainer``), evolved weights (``evolve_weights``), weight
inheritance (``inheritance``) and their settings (``settings``, torch-free). Import from the
submodules: this package imports nothing, so reading settings never loads torch."""
