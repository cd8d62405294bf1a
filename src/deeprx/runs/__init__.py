"""Where trained receivers live and how they are named.

* :mod:`~deeprx.runs.checkpoint`: a run folder's checkpoint (safetensors + JSON), verified on load;
* :mod:`~deeprx.runs.registry`: the shipped receivers (``src/deeprx/weights/``): list, resolve, record;
* :mod:`~deeprx.runs.reference`: the one parser of a model reference (a preset, a run folder, a shipped name or a
  classical receiver), used wherever a command or a config names a model;
* :mod:`~deeprx.runs.layout`: what lives where in an output folder (run folders, test sets, the store).

The package sits just above the models and the config: it imports nothing from ``link``, ``train`` or ``studies``.
"""
