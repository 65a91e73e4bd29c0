"""A local web page for deblurring (`udeblur serve`): drop images, compare before/after, download."""

from .server import DeblurService, ServiceError, make_server

__all__ = ["DeblurService", "ServiceError", "make_server"]
