"""The paper's method (Lu et al., CVPR 2019) with the text additions: the disentangled model trained on unpaired data.

Update order (the authors' DRIT code): every iteration the discriminators take one Adam step; every
``train.g_every``-th iteration (2 by default) the encoders and generators take one step too, on the same
fakes, against the just-updated discriminators. Two optimizer groups (generator side, discriminator side):
one Adam per group is exactly the authors' one Adam per network, since Adam's state is per parameter.

Speed switches: ``train.amp`` "fp16" keeps one GradScaler per optimizer group (the groups step at different
rates, so an overflow skips only that group's step); ``channels_last`` (NHWC networks and inputs); ``compile``
(``nn.Module.compile`` on each sub-network the objective calls, which keeps state-dict keys unchanged).
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..archs.noise import sharded_noise
from ..config import ConfigError, ExperimentConfig, config_from_dict
from ..model import DeblurNet, Discriminators, Translator
from ..model_files import CheckpointError, load_checkpoint, load_deblur_net
from ..training.kernel_prior import KernelBank
from ..training.objective import discriminator_objective, generator_objective, make_fakes
from ..training.precision import grad_scaler
from ..visualize import to_numpy_image
from .base import Method, MethodContext


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class DisentangledMethod(Method):
    """Content/blur encoders, two generators (Translator) and the discriminators, trained adversarially."""

    name = "disentangled"

    def __init__(self, cfg: ExperimentConfig, ctx: MethodContext):
        super().__init__(cfg, ctx)
        t = cfg.train
        if t.random_z_split and ((t.unpaired_batch or t.batch_size) // self.dist.world_size) % 2:
            raise ConfigError("train.random_z_split halves each process's unpaired images: make train.unpaired_batch "
                              f"(else train.batch_size) a multiple of {2 * self.dist.world_size} (2 x the world size)")
        # this order (networks, optimizers, perceptual net) fixes the initial weights and RNG stream of every preset
        self.translator = Translator(cfg.model).to(self.device)
        self.discs = Discriminators(cfg.model, random_z=cfg.loss.random_z_adv > 0).to(self.device)
        if t.channels_last:
            self.translator.to(memory_format=torch.channels_last)
            self.discs.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.translator.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
        self.opt_d = torch.optim.Adam(self.discs.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
        # fp16 needs loss scaling; one scaler per group since the groups step at different rates
        self.scaler_g = grad_scaler(self.amp)
        self.scaler_d = grad_scaler(self.amp)
        self._noise_draws: dict[tuple, list] = {}  # make_fakes: noise of skipped passes, by input shape
        self._perceptual = self._make_perceptual()
        self._kernel_bank = (
            KernelBank(cfg.model.kernel_size, seed=t.seed, noise=cfg.loss.prior_noise)
            if cfg.loss.kernel_prior > 0 or cfg.loss.prior_cycle > 0
            else None
        )

    # ------------------------------------------------------------------ contract
    def networks(self) -> dict[str, nn.Module]:
        return {"translator": self.translator, "discriminators": self.discs}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim_g": self.opt_g, "optim_d": self.opt_d}

    def deblur_net(self) -> DeblurNet:
        return self.translator.deblur_net()

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "translator": self.translator.state_dict(),
            "discriminators": self.discs.state_dict(),
            "optim_g": self.opt_g.state_dict(),
            "optim_d": self.opt_d.state_dict(),
        }
        for name, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler is not None:
                state[name] = scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.translator.load_state_dict(state["translator"])
        self.discs.load_state_dict(state["discriminators"])
        self.opt_g.load_state_dict(state["optim_g"])
        self.opt_d.load_state_dict(state["optim_d"])
        for name, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler is not None and name in state:
                scaler.load_state_dict(state[name])

    def preview(self, batch: dict[str, torch.Tensor]) -> list[list[np.ndarray]]:
        """Rows of blurred | deblurred | sharp | re-blurred | cycle: the training passes in eval mode (no content
        noise) with z = mu."""
        s, b = batch["sharp"].to(self.device), batch["blurred"].to(self.device)
        tr = self.translator
        was_training = tr.training
        tr.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                out = tr.translate(s, b, sample=False)
                s_b, b_s = out["s_b"], out["b_s"]
                s_hat, _ = tr.cycle(s_b, b_s, out["z"], out.get("kernel"), sample=False)
        finally:
            tr.train(was_training)
        return [[to_numpy_image(t[i]) for t in (b, s_b, s, b_s, s_hat)] for i in range(s.shape[0])]

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """A D step, and a G step every g_every iterations. ``batch`` is this process's share of the global one."""
        w = self.cfg.loss
        s = batch["sharp"].to(self.device, non_blocking=True)
        b = batch["blurred"].to(self.device, non_blocking=True)
        if self.cfg.train.channels_last:
            s = s.contiguous(memory_format=torch.channels_last)
            b = b.contiguous(memory_format=torch.channels_last)
        g_turn = (step + 1) % self.cfg.train.g_every == 0
        self.translator.train()
        logs: dict[str, float] = {}
        s_all = s
        n_unpaired = self.cfg.train.unpaired_batch // self.dist.world_size
        if 0 < n_unpaired < s.shape[0]:
            s, b = s[:n_unpaired], b[:n_unpaired]  # the blur prior's terms still see every sharp crop
        random_real = None
        if self.cfg.train.random_z_split:  # the authors' split: encoded half, random-z half (config.py)
            half = s.shape[0] // 2
            s, b, random_real = s[:half], b[:half], (s[half:], b[half:])

        grad_ctx = contextlib.nullcontext() if g_turn else torch.no_grad()
        with grad_ctx, self.autocast(), self._noise():
            fakes = make_fakes(self.translator, s, b, w, for_generator=g_turn, draws=self._noise_draws)

        with self.autocast():
            d_terms = discriminator_objective(self.discs, s, b, fakes, w, random_real)
        if d_terms:
            d_loss = sum(d_terms.values())
            logs["grad_norm_d"], d_values = self.backward_step(
                d_loss, self.discs, self.opt_d, "discriminator", d_terms, step, self.scaler_d
            )
            logs.update(d_values)

        if g_turn:
            _set_requires_grad(self.discs, False)  # G's loss needs no gradient for D's weights
            try:
                prior = None
                if self._kernel_bank is not None:
                    # each rank draws its own share (the rank is folded into the step index)
                    prior = self._kernel_bank.draw(s_all.shape[0], step * self.dist.world_size + self.dist.rank)
                with self.autocast(), self._noise():
                    g_terms, _ = generator_objective(
                        self.translator, self.discs, s, b, fakes, w, self._perceptual, prior, prior_sharp=s_all
                    )
                g_loss = sum(g_terms.values())
                logs["grad_norm_g"], g_values = self.backward_step(
                    g_loss, self.translator, self.opt_g, "generator", g_terms, step, self.scaler_g
                )
            finally:
                _set_requires_grad(self.discs, True)
            logs.update(g_values)
            logs["g_total"] = sum(g_values.values())
        return logs

    # ------------------------------------------------------------------ hooks
    def compile(self) -> None:
        """Each sub-network the objective calls directly (the top modules' ``forward`` is never called)."""
        tr = self.translator
        nets: list[nn.Module] = [tr.content.sharp, tr.content.blurred, tr.content.shared, tr.gen.shared,
                                 tr.gen.sharp, tr.gen.blurred]
        if tr.content.blurred_last is not tr.content.shared:
            nets.append(tr.content.blurred_last)
        if tr.blur is not None:
            nets.append(tr.blur)
        nets += [d for d in self.discs.children()]
        for net in nets:
            net.compile()

    def init_from(self, path: Path) -> None:
        """Weights from an exported model or a checkpoint; the architecture must be this config's."""
        from ..inference.pretrained import bundled_name, model_path

        name = bundled_name(str(path))  # "bundled" or "bundled:NAME", as --model takes it
        if name is not None:
            path = model_path(name)
        ours = asdict(self.cfg.model)

        def check(theirs: dict[str, Any]) -> None:
            differ = [f"model.{k}: {theirs.get(k)!r} in the file" for k in ours if ours[k] != theirs.get(k)]
            if differ:
                raise ConfigError(f"train.init_from: {path} was trained with other model settings "
                                  f"({'; '.join(differ)}); set them the same")

        if path.suffix == ".pt":
            saved = load_checkpoint(path)
            try:
                check(config_from_dict(saved["config"]).to_dict()["model"])
                self.translator.load_state_dict(saved["translator"])
                self.discs.load_state_dict(saved["discriminators"])
            except (KeyError, TypeError, RuntimeError) as exc:
                raise ConfigError(f"train.init_from: {path} does not fit this config's networks ({str(exc)[:300]}); "
                                  "use the same model.* settings as the run that wrote it") from exc
            return
        try:
            net, model_cfg = load_deblur_net(path)
        except CheckpointError as exc:
            raise ConfigError(f"train.init_from: {exc}") from exc
        check(asdict(model_cfg))
        self.translator.deblur_net().load_state_dict(net.state_dict())
        # the sharp-domain encoder starts as the blurred one: both map into one content space (shared last layer)
        content = self.translator.content
        content.sharp.load_state_dict(content.blurred.state_dict())
        if content.shared is not content.blurred_last:  # no shared layer: its own last block starts as a copy too
            content.shared.load_state_dict(content.blurred_last.state_dict())

    # ------------------------------------------------------------------ internals
    def _make_perceptual(self):
        w = self.cfg.loss
        if w.perceptual <= 0:
            return None
        from ..archs.vgg import load_perceptual_net
        from ..losses.perceptual import perceptual_loss

        net = load_perceptual_net(w.perceptual_net, w.perceptual_layer, w.vgg19_weights, device=self.device)
        layer = w.perceptual_layer
        return lambda x, y: perceptual_loss(net, x, y, layer)

    def _noise(self):
        """Distributed: every rank draws the global batch's noise and keeps its rows (archs/noise.py)."""
        if self.dist.enabled:
            return sharded_noise(self.dist.rank, self.dist.world_size)
        return contextlib.nullcontext()


__all__ = ["DisentangledMethod"]
