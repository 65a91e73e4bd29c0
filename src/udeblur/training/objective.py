"""The training objective of method.md, term by term. Every term with weight 0 is skipped entirely.

    L_G = adv * L_adv + kl * L_KL + cycle * L_cc + perceptual * L_p
          + self_recon * L_rec + random_z_adv * L_adv(random z) + latent_regression * L_lr   (authors' code)
          + reblur * || k * s_b - b ||_1                                                      (ours, off in `paper`)
          + kernel_prior * || E^b_k(k' * s) * s - k' * s ||_1 + prior_cycle * || G_S(k' * s) - s ||_1
                                                  (ours, off in `paper`; k' from a blur prior, see kernel_prior.py)

One generator update follows the authors' (DRIT) order: the fakes are made once, the discriminators are
updated on them (detached), then the encoders/generators are updated against the *updated* discriminators.
As in DRIT, the random-z adversarial and latent-regression terms train the generators and content encoders but not
the blur encoder: E^b is applied with frozen weights there, so it cannot learn to cheat the latent regression.
DRIT takes a second optimizer step for those terms; here all terms share one step (one backward pass).
DRIT also splits each batch between the encoded and the random-z branch; ``train.random_z_split`` does the same
(the method passes the halves; ``random_real`` of :func:`discriminator_objective`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import functional_call

from ..archs.blur_encoder import apply_kernel
from ..archs.noise import NoiseDraws, noise_like, recorded_noise, replay_noise
from ..config import LossConfig
from ..losses.adversarial import discriminator_loss, generator_loss
from ..losses.regularizers import kl_loss, l1_loss, pixel_loss
from ..model import Discriminators, Translator
from .kernel_prior import PriorDraw, blur_with_prior

PerceptualFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def uses_random_z(w: LossConfig) -> bool:
    return w.random_z_adv > 0 or w.latent_regression > 0


def fakes_used(w: LossConfig, for_generator: bool = True) -> bool:
    """Whether any term of this iteration reads the fakes (the D terms always; the G terms on G iterations)."""
    if w.adv > 0 or w.random_z_adv > 0:
        return True
    unpaired = (w.kl, w.cycle, w.self_recon, w.perceptual, w.reblur, w.latent_regression)
    return for_generator and any(v > 0 for v in unpaired)


def make_fakes(translator: Translator, s: torch.Tensor, b: torch.Tensor, w: LossConfig, for_generator: bool = True,
               draws: dict[tuple, NoiseDraws] | None = None) -> dict[str, torch.Tensor]:
    """Forward passes shared by the D and G updates: s_b, b_s (+ random-z outputs when used).

    ``for_generator=False`` (a D-only iteration) leaves out what only G's terms read: b_rand when only the latent
    regression uses it, and every pass when no D term is on. The noise those passes would draw is drawn all the
    same (``replay_noise``, shapes remembered in ``draws`` from one real pass), so every later draw, and with it
    the whole run, is bit-identical to computing them.
    """
    if not fakes_used(w, for_generator):
        dev = s.device.type
        key = (tuple(s.shape), tuple(b.shape), s.dtype, torch.is_autocast_enabled(dev),
               torch.get_autocast_dtype(dev), translator.training)
        if draws is not None and key in draws:
            replay_noise(draws[key])
            return {}
        with recorded_noise() as made, torch.no_grad():
            _passes(translator, s, b, w, b_rand=False)
        if draws is not None:
            draws[key] = made
        return {}
    # b_rand: for the random-z D, or for G's latent regression
    return _passes(translator, s, b, w, b_rand=w.random_z_adv > 0 or for_generator)


def _passes(translator: Translator, s: torch.Tensor, b: torch.Tensor, w: LossConfig,
            b_rand: bool) -> dict[str, torch.Tensor]:
    out = translator.translate(s, b)
    if uses_random_z(w):
        z_rand = noise_like(out["mu"])
        out["z_rand"] = z_rand
        if b_rand:
            source = translator.blurred_source(s, out.get("kernel"))
            out["b_rand"] = translator.gen.to_blurred(out["c_s"], z_rand, source)
        if w.random_z_adv > 0:
            out["s_rand"] = translator.gen.to_sharp(out["c_b"], z_rand, b)
    return out


def discriminator_objective(
    discs: Discriminators, s: torch.Tensor, b: torch.Tensor, fakes: dict[str, torch.Tensor], w: LossConfig,
    random_real: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Unweighted D losses (each D is a separate game; weights only scale G's side).

    ``random_real``: the real (sharp, blurred) images of the random-z pair, other than ``s``/``b`` under
    ``train.random_z_split``.
    """
    terms: dict[str, torch.Tensor] = {}
    if w.adv > 0:
        terms["d_sharp"] = discriminator_loss(discs.sharp(s), discs.sharp(fakes["s_b"].detach()), w.gan_mode)
        terms["d_blurred"] = discriminator_loss(discs.blurred(b), discs.blurred(fakes["b_s"].detach()), w.gan_mode)
    if w.random_z_adv > 0:
        assert discs.sharp_random is not None and discs.blurred_random is not None
        s_real, b_real = random_real if random_real is not None else (s, b)
        terms["d_sharp_random"] = discriminator_loss(
            discs.sharp_random(s_real), discs.sharp_random(fakes["s_rand"].detach()), w.gan_mode
        )
        terms["d_blurred_random"] = discriminator_loss(
            discs.blurred_random(b_real), discs.blurred_random(fakes["b_rand"].detach()), w.gan_mode
        )
    return terms


def generator_objective(
    translator: Translator,
    discs: Discriminators,
    s: torch.Tensor,
    b: torch.Tensor,
    fakes: dict[str, torch.Tensor],
    w: LossConfig,
    perceptual: PerceptualFn | None = None,
    prior: PriorDraw | None = None,
    prior_sharp: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Weighted encoder/generator loss terms, and the cycle images (for sample grids).

    ``prior``: kernels and noise drawn from the blur prior, needed when loss.kernel_prior or
    loss.prior_cycle is on; they blur ``prior_sharp`` (default ``s``), which may be a larger batch of sharp crops
    than the unpaired terms use (``train.unpaired_batch``).
    """
    terms: dict[str, torch.Tensor] = {}
    images: dict[str, torch.Tensor] = {}
    s_b, b_s, z = fakes.get("s_b"), fakes.get("b_s"), fakes.get("z")  # none when no term reads them
    if w.adv > 0:
        terms["adv"] = w.adv * (
            generator_loss(discs.sharp(s_b), w.gan_mode) + generator_loss(discs.blurred(b_s), w.gan_mode)
        )
    if w.kl > 0:
        terms["kl"] = w.kl * kl_loss(fakes["mu"], fakes["logvar"])
    if w.cycle > 0:
        s_hat, b_hat = translator.cycle(s_b, b_s, z, fakes.get("kernel"))
        terms["cycle"] = w.cycle * (l1_loss(s_hat, s) + l1_loss(b_hat, b))
        images["s_hat"], images["b_hat"] = s_hat, b_hat
    if w.self_recon > 0:
        s_rec = translator.gen.to_sharp(fakes["c_s"], z, s)
        b_rec = translator.gen.to_blurred(fakes["c_b"], z, b)
        terms["self_recon"] = w.self_recon * (l1_loss(s_rec, s) + l1_loss(b_rec, b))
    if w.perceptual > 0:
        if perceptual is None:
            raise ValueError("loss.perceptual > 0 needs a perceptual network")
        terms["perceptual"] = w.perceptual * perceptual(s_b, b)  # vs its OWN blurred input
    if w.reblur > 0:
        # blur is a convolution: the deblurred image, blurred with E^b's kernel, must give back the input.
        # Invented glyphs cannot pass this test; the adversarial term still pulls s_b to the sharp domain.
        terms["reblur"] = w.reblur * l1_loss(apply_kernel(s_b.float(), fakes["kernel"]), b)
    if w.kernel_prior > 0 or w.prior_cycle > 0:
        if prior is None:
            raise ValueError("loss.kernel_prior / loss.prior_cycle need kernels drawn from the blur prior")
        s = s if prior_sharp is None else prior_sharp
        clean, noisy = blur_with_prior(s, *prior)
        mu_p, logvar_p, kernel_p = translator.encode_blur_and_kernel(noisy)
        if w.kernel_prior > 0:
            # E^b's kernel must blur s as the prior's kernel did (image space: shifts invisible on s cost nothing)
            terms["kernel_prior"] = w.kernel_prior * l1_loss(apply_kernel(s.float(), kernel_p), clean)
        if w.prior_cycle > 0:
            # the sharp cycle with a known blur: deblurring trained on the sharp set blurred by the prior
            z_p = translator.sample_blur_code(mu_p, logvar_p)
            s_p = translator.gen.to_sharp(translator.content.encode_blurred(noisy), z_p, noisy)
            terms["prior_cycle"] = w.prior_cycle * pixel_loss(w.prior_cycle_norm)(s_p, s)
            images["s_prior"] = s_p
    if w.random_z_adv > 0:
        assert discs.sharp_random is not None and discs.blurred_random is not None
        terms["random_z_adv"] = w.random_z_adv * (
            generator_loss(discs.sharp_random(fakes["s_rand"]), w.gan_mode)
            + generator_loss(discs.blurred_random(fakes["b_rand"]), w.gan_mode)
        )
    if w.latent_regression > 0:
        frozen = {name: p.detach() for name, p in translator.blur.named_parameters()}
        mu_rand, _ = functional_call(translator.blur, frozen, (fakes["b_rand"],))
        terms["latent_regression"] = w.latent_regression * l1_loss(mu_rand, fakes["z_rand"])
    return terms, images
