"""Evaluation harness: the paper's metrics, baselines and ablations under one roof.

* :mod:`.evaluate`: run methods over a paired test set -> per-image CSV, JSON summary, HTML report.
* :mod:`.baselines`: the blurred input, oracle non-blind deconvolution with the true kernel, a classical blind
  method, and trained models, behind one ``method(item) -> image`` interface.
* :mod:`.classical`: Wiener / Richardson-Lucy deconvolution and the L0-gradient blind kernel estimate.
* :mod:`.variants`: named ablations / CycleGAN / baselines as config override lists.
* :mod:`.compare`: train every variant at one budget and write one comparison report.

Submodules import lazily; importing this package is cheap.
"""
