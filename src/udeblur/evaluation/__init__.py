"""Evaluation harness: the paper's metrics, baselines and ablations under one roof.

* :mod:`.evaluate`: the harness: run methods over a paired test set -> per-image CSV, JSON summary, HTML report.
* :mod:`.test_set`: the paired test images, with true kernels and text where the data has them.
* :mod:`.scores`: the per-image metrics (PSNR, SSIM, VGG feature distance, face identity distance, OCR).
* :mod:`.summary`: means, standard errors, gains over the blurred input; ``per_image.csv``, ``summary.json``,
  ``table.md``. :mod:`.statistics`: the paired-bootstrap interval behind the gains.
* :mod:`.report_page`: the HTML report (comparison grid, metric charts, training curves);
  :mod:`.demo_page`: the page of ``udeblur demo``.
* :mod:`.baselines`: the registry of baselines (the blurred input, oracle non-blind deconvolution with the true
  kernel, a classical blind method) and trained models, behind one ``method(item) -> image`` interface.
* :mod:`.classical`: Wiener / Richardson-Lucy deconvolution and the L0-gradient blind kernel estimate.
* :mod:`.variants`: named ablations / CycleGAN / baselines as config override lists.
* :mod:`.compare`: train every variant at one budget and write one comparison report.

Submodules import lazily; importing this package is cheap.
"""
