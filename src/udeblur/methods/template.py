"""A template method to copy: the smallest complete training method, runnable as it is.

It trains the deblurring path on the unpaired stream's SHARP crops, blurred on the fly by a box filter, with an L1
loss: not a good deblurrer, but every part of the contract (methods/base.py) in a few lines. To make your own:

1. copy this file to ``methods/<name>.py`` and rename the class;
2. register it: ``register_method("<name>", lambda: MyMethod)`` in methods/registry.py (or in your own code);
3. train it: ``udeblur train -c tiny -o runs/x train.method=<name>``. The generic trainer gives it the schedule,
   checkpoints, exact resume, Ctrl-C handling, logs, sample grids and the ``deblur.safetensors`` export.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import ExperimentConfig
from ..model import DeblurNet, Translator
from ..visualize import to_numpy_image
from .base import Method, MethodContext


class TemplateMethod(Method):
    name = "template"

    def __init__(self, cfg: ExperimentConfig, ctx: MethodContext):
        super().__init__(cfg, ctx)  # sets self.cfg, self.device, self.dist, self.amp
        t = cfg.train
        # the trainer seeded torch just before: build networks first, in a fixed order, so the seed fixes them
        self.net = Translator(cfg.model).deblur_net().to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.net}  # broadcast from rank 0 under torchrun; compiled with train.compile

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optim": self.opt}  # the trainer sets their learning rate from the schedule before each step

    def deblur_net(self) -> DeblurNet:
        return self.net  # what the run exports as deblur.safetensors

    def train_step(self, batch: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        # batch: this rank's share of make_data's stream (base class: the unpaired {"sharp", "blurred"} crops)
        s = batch["sharp"].to(self.device)
        b = self._blur(s)
        self.net.train()
        with self.autocast():  # train.amp, as the trainer resolved it
            loss = F.l1_loss(self.net(b).float(), s)
        # backward, gradient all-reduce across ranks, clipping, the NaN check and the optimizer step, in one call
        _, logs = self.backward_step(loss, self.net, self.opt, "template", {"l1": loss}, step)
        return logs  # floats; the trainer adds "lr" and writes them to log.jsonl / tensorboard

    def preview(self, batch: dict[str, torch.Tensor]) -> list[list[np.ndarray]]:
        # rows of images for samples/*.png: deterministic, no gradient
        s = batch["sharp"].to(self.device)
        b = self._blur(s)
        with torch.no_grad():
            out = self.net.eval()(b)
        self.net.train()
        return [[to_numpy_image(t[i]) for t in (b, out, s)] for i in range(s.shape[0])]

    def state_dict(self) -> dict[str, Any]:
        # everything the method owns; the trainer adds step, config and the RNG state (checkpoints/last.pt)
        return {"net": self.net.state_dict(), "optim": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["optim"])

    @staticmethod
    def _blur(x: torch.Tensor) -> torch.Tensor:
        k = 5  # a box filter: the simplest blur; replicate padding keeps the crop size
        weight = x.new_full((x.shape[1], 1, k, k), 1.0 / (k * k))
        return F.conv2d(F.pad(x, (k // 2,) * 4, mode="replicate"), weight, groups=x.shape[1])


__all__ = ["TemplateMethod"]
