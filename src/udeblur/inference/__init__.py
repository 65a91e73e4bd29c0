"""Inference: deblur images of any size and mode with a trained model (``Deblurrer``)."""

from .deblurrer import DeblurBatchError, Deblurrer, plan_outputs, resolve_device

__all__ = ["DeblurBatchError", "Deblurrer", "plan_outputs", "resolve_device"]
