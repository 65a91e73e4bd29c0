"""What the text domain is made from: its config, its blur, and the config an experiment asks for."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..blur import BlurConfig

if TYPE_CHECKING:
    from ...config import ExperimentConfig


def _text_blur() -> BlurConfig:
    # Hradis et al. mix camera shake and defocus with noise; a little linear/Gaussian for variety.
    return BlurConfig(
        kinds={"shake": 0.65, "defocus": 0.25, "linear": 0.05, "gaussian": 0.05},
        max_kernel=31,
        min_kernel=7,
        noise_std=(0.0, 0.02),
        poisson_peak=None,
        jpeg_quality=None,
    )


def documents_blur() -> BlurConfig:
    """The blur of the ``documents`` appearance: the same kernels, plus shot noise and JPEG, as phone photos have."""
    cfg = _text_blur()
    return BlurConfig(kinds=cfg.kinds, max_kernel=cfg.max_kernel, min_kernel=cfg.min_kernel, noise_std=(0.0, 0.03),
                      poisson_peak=(200.0, 3000.0), jpeg_quality=(70, 95))


APPEARANCES = ("plain", "documents")


@dataclass
class TextDomainConfig:
    size: int = 128  # crop side
    train_count: int = 2000  # crops in EACH of train/sharp and train/blurred
    test_count: int = 64  # paired crops in test/
    channels: int = 3
    text_height: tuple[int, int] = (8, 40)  # ascender-to-descender ink height of a line, pixels
    blur: BlurConfig = field(default_factory=_text_blur)
    seed: int = 0
    line_spacing: tuple[float, float] = (1.0, 1.8)  # baseline distance / text height
    max_rotation: float = 1.5  # degrees; a third of the pages are straight
    system_fonts: bool = True  # also use fonts under /usr/share/fonts (the data then depends on the machine)
    # "plain": mostly dark ink on light paper, mild shading (the bundled model's data). "documents": also coloured
    # and grey paper, coloured and light-on-dark print, strong shading and vignetting, as photographed pages have
    appearance: str = "plain"

    def __post_init__(self) -> None:
        if self.appearance not in APPEARANCES:
            raise ValueError(f"TextDomainConfig.appearance must be one of {APPEARANCES}, got {self.appearance!r}")
        if isinstance(self.blur, dict):  # read back from meta.json / YAML
            self.blur = BlurConfig(**self.blur)
        self.text_height = (int(self.text_height[0]), int(self.text_height[1]))
        self.line_spacing = (float(self.line_spacing[0]), float(self.line_spacing[1]))
        if self.size < 8:
            raise ValueError(f"TextDomainConfig.size must be >= 8, got {self.size}")
        if self.train_count < 0 or self.test_count < 0:
            raise ValueError("TextDomainConfig: train_count and test_count must be >= 0")
        if self.channels not in (1, 3):
            raise ValueError(f"TextDomainConfig.channels must be 1 or 3, got {self.channels}")
        if not 4 <= self.text_height[0] <= self.text_height[1]:
            raise ValueError(f"TextDomainConfig.text_height: need 4 <= low <= high, got {self.text_height}")
        if not 0.8 <= self.line_spacing[0] <= self.line_spacing[1]:
            raise ValueError(f"TextDomainConfig.line_spacing: need 0.8 <= low <= high, got {self.line_spacing}")


def builtin_config(cfg: ExperimentConfig) -> TextDomainConfig:
    """The text domain an experiment trains on when it names no data root (the ``data.builtin_*`` keys)."""
    extra = {"appearance": "documents", "blur": documents_blur()} if cfg.data.builtin_appearance == "documents" else {}
    return TextDomainConfig(
        train_count=cfg.data.builtin_count,
        test_count=cfg.data.builtin_test_count,
        channels=cfg.model.channels,
        seed=cfg.train.seed,
        **extra,
    )


def without_training(cfg: TextDomainConfig) -> TextDomainConfig:
    """The same domain's paired test split alone: the test crops do not depend on the training counts."""
    return dataclasses.replace(cfg, train_count=0)
