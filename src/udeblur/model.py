"""The disentangled deblurring model (Lu et al., CVPR 2019): its seven networks and forward passes.

    translator = Translator(ModelConfig())        # E_S^c, E_B^c (+ shared block), E^b, G_S, G_B
    sharp = translator.deblur(blurred)            # deterministic: z_b = mu
    net = translator.deblur_net()                 # the deblurring path only, for export/inference

Discriminators live apart (``Discriminators``) because only training needs them.
"""

from __future__ import annotations

import torch
from torch import nn

from .archs.blocks import init_weights
from .archs.blur_encoder import BlurEncoder, apply_kernel, reparameterize
from .archs.discriminator import MultiScaleDiscriminator
from .archs.registry import generator_type
from .config import ModelConfig


class DeblurNet(nn.Module):
    """The deblurring path s_b = G_S(E_B^c(b), mu(b)): what inference and the exported file need.

    Built either fresh from a config (to load an exported file) or around a Translator's own modules
    (``Translator.deblur_net``), in which case it shares their parameters. Works on any size: the input is padded
    by reflection to ``size_multiple`` (and ``min_size``) and the output cropped back.
    """

    def __init__(
        self,
        content_blurred: nn.Module,
        content_shared: nn.Module,
        blur: BlurEncoder | None,
        gen_shared: nn.Module,
        gen_sharp: nn.Module,
    ):
        super().__init__()
        self.content_blurred = content_blurred
        self.content_shared = content_shared
        self.blur = blur
        self.gen_shared = gen_shared
        self.gen_sharp = gen_sharp

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DeblurNet:
        return Translator(cfg).deblur_net()

    @property
    def size_multiple(self) -> int:
        """Total downsampling of the content path; inputs are padded to a multiple of this."""
        return int(getattr(self.content_blurred, "size_multiple", 4))

    @property
    def min_size(self) -> int:
        """Smallest height/width the networks accept (InstanceNorm needs a 2x2 content code; the blur
        encoder halves the size 1 + blocks times); a multiple of ``size_multiple``. Smaller inputs are padded."""
        smallest = max(8, 2 ** (self.blur.blocks + 1)) if self.blur is not None else 8
        m = self.size_multiple
        return -(-smallest // m) * m

    def padded_size(self, n: int) -> int:
        """The side the networks run at for an image side of ``n`` px."""
        m = self.size_multiple
        return max(self.min_size, -(-n // m) * m)

    def forward(self, b: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """Deblur N x C x H x W images in [-1, 1] of any size (padded by reflection here, cropped back)."""
        h, w = b.shape[-2:]
        hp, wp = self.padded_size(h), self.padded_size(w)
        x = pad_reflect(b, hp, wp) if (hp, wp) != (h, w) else b
        if z is None:
            z = self.blur_code(x)
        c = self.content_shared(self.content_blurred(x))
        out = self.gen_sharp(self.gen_shared(c), z, x)
        return out if (hp, wp) == (h, w) else out[..., :h, :w]

    def blur_code(self, b: torch.Tensor) -> torch.Tensor:
        if self.blur is None:  # ablation without a blur encoder: the generators always get z = 0
            return b.new_zeros(b.shape[0], self.gen_sharp.latent)
        return self.blur(b)[0]


class Translator(nn.Module):
    """Encoders and generators: E_S^c, E_B^c (sharing their last block), E^b, G_S and G_B."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        kind = generator_type(cfg.generator)  # model.generator names the pair (archs/registry.py)
        self.content = kind.content(cfg)
        self.blur = (
            BlurEncoder(cfg.channels, cfg.width, cfg.blur_latent, cfg.blur_blocks, cfg.kernel_size)
            if cfg.blur_encoder
            else None
        )
        self.gen = kind.generators(cfg, self.content)
        init_weights(self, cfg.init_std)  # the authors' N(0, std); a generator type may re-init its own layers
        for part in (self.content, self.gen):
            if hasattr(part, "reset_parameters"):
                part.reset_parameters()

    def deblur_net(self) -> DeblurNet:
        return DeblurNet(self.content.blurred, self.content.blurred_last, self.blur, self.gen.shared, self.gen.sharp)

    def encode_blur(self, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of E^b; without a blur encoder (ablation) a fixed z = 0 (logvar = 0)."""
        if self.blur is None:
            zero = b.new_zeros(b.shape[0], self.cfg.blur_latent)
            return zero, zero
        return self.blur(b)

    def sample_blur_code(self, mu: torch.Tensor, logvar: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """z = mu + sigma * eps while training the VAE; z = mu with ``sample=False`` or without a blur encoder."""
        return reparameterize(mu, logvar) if sample and self.blur is not None else mu

    def encode_blur_and_kernel(self, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(mu, logvar, kernel) of E^b in one pass; kernel is None without a kernel head (model.kernel_size 0)."""
        if self.blur is not None and self.blur.fc_kernel is not None:
            return self.blur.forward_with_kernel(b)
        return (*self.encode_blur(b), None)

    @torch.no_grad()
    def deblur(self, b: torch.Tensor) -> torch.Tensor:
        """Deterministic deblurring (z_b = mu, no content noise) whatever the module's mode."""
        was_training = self.training
        self.eval()
        try:
            return self.deblur_net()(b)
        finally:
            self.train(was_training)

    def blurred_source(self, s: torch.Tensor, kernel: torch.Tensor | None) -> torch.Tensor:
        """What G_B corrects (global skip): s itself, or k * s with ``model.blur_from_kernel``."""
        if self.cfg.blur_from_kernel:
            if kernel is None:
                raise ValueError("model.blur_from_kernel needs E^b's kernel")
            return apply_kernel(s, kernel)
        return s

    def translate(self, s: torch.Tensor, b: torch.Tensor, sample: bool = True) -> dict[str, torch.Tensor]:
        """The forward passes of method.md on a batch of sharp s and (unpaired) blurred b.

        Returns c_s, c_b, mu, logvar, z (the blur code: sampled, or mu with ``sample=False``), s_b (deblurred),
        b_s (re-blurred), and E^b's kernel when it has a kernel head.
        """
        c_s = self.content.encode_sharp(s)
        c_b = self.content.encode_blurred(b)
        out: dict[str, torch.Tensor] = {}
        mu, logvar, kernel = self.encode_blur_and_kernel(b)
        if kernel is not None:
            out["kernel"] = kernel
        z = self.sample_blur_code(mu, logvar, sample)
        out.update({
            "c_s": c_s,
            "c_b": c_b,
            "mu": mu,
            "logvar": logvar,
            "z": z,
            "s_b": self.gen.to_sharp(c_b, z, b),
            "b_s": self.gen.to_blurred(c_s, z, self.blurred_source(s, out.get("kernel"))),
        })
        return out

    def cycle(
        self, s_b: torch.Tensor, b_s: torch.Tensor, z: torch.Tensor, kernel: torch.Tensor | None = None,
        sample: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-cycle: s_hat = G_S(E_B^c(b_s), E^b(b_s)), b_hat = G_B(E_S^c(s_b), z_b); ``sample`` as in
        :meth:`translate` (for b_s's blur code)."""
        if self.cfg.blur_from_kernel:
            # b_s is then a physically blurred copy of s: the sharp cycle trains the deblurring side on it, and
            # G_B/E^b's kernel learn to blur from realism (D_B) alone, not from what is easy to invert
            b_s = b_s.detach()
        mu2, logvar2 = self.encode_blur(b_s)
        z2 = self.sample_blur_code(mu2, logvar2, sample)
        s_hat = self.gen.to_sharp(self.content.encode_blurred(b_s), z2, b_s)
        b_hat = self.gen.to_blurred(self.content.encode_sharp(s_b), z, self.blurred_source(s_b, kernel))
        return s_hat, b_hat


class Discriminators(nn.Module):
    """D_S and D_B, plus the authors' second pair for random-z outputs when that term is on."""

    def __init__(self, cfg: ModelConfig, random_z: bool = True):
        super().__init__()

        def make() -> MultiScaleDiscriminator:
            # initialised one by one, so D_S and D_B do not depend on whether the random-z pair exists
            d = MultiScaleDiscriminator(cfg.channels, cfg.disc_width, cfg.disc_layers, cfg.disc_scales)
            init_weights(d, cfg.init_std)
            return d

        self.sharp = make()
        self.blurred = make()
        self.sharp_random = make() if random_z else None
        self.blurred_random = make() if random_z else None


def pad_reflect(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Pad N x C x H x W at the bottom/right to height x width by reflection (repeated for large pads,
    replication for a 1-px side)."""
    return _pad_axis(_pad_axis(x, height - x.shape[2], 2), width - x.shape[3], 3)


def _pad_axis(x: torch.Tensor, extra: int, dim: int) -> torch.Tensor:
    # torch's reflect pad needs pad < size, so large pads are done in steps; a 1-px side can only be replicated
    while extra > 0:
        size = x.shape[dim]
        if size == 1:
            pad = (0, 0, 0, extra) if dim == 2 else (0, extra, 0, 0)
            return torch.nn.functional.pad(x, pad, mode="replicate")
        step = min(extra, size - 1)
        pad = (0, 0, 0, step) if dim == 2 else (0, step, 0, 0)
        x = torch.nn.functional.pad(x, pad, mode="reflect")
        extra -= step
    return x


def count_parameters(module: nn.Module) -> int:
    """Number of distinct parameters (shared modules counted once)."""
    return sum(p.numel() for p in module.parameters())
