"""The trainer: owns the networks' optimisation, the schedule, checkpoints, logs and sample grids.

    from udeblur import Trainer, load_config
    Trainer(load_config("small"), "runs/small").fit()

Update order (the authors' DRIT code): every iteration the discriminators take one Adam step; every
``train.g_every``-th iteration (2 by default) the encoders and generators take one step too, on the same
fakes, against the just-updated discriminators. Two optimizer groups (generator side, discriminator side):
one Adam per group is exactly the authors' one Adam per network, since Adam's state is per parameter.

Exact resume: the data stream is a pure function of (seed, step) and the global torch RNG state is saved,
so N steps + resume + M steps equals N+M steps straight (on the CPU; GPU kernels may not be deterministic).

Distributed: under ``torchrun`` (RANK/WORLD_SIZE in the environment) the trainer joins the process group, splits
the GLOBAL batch ``train.batch_size`` over the ranks and averages each optimizer group's gradients across ranks
before clipping and stepping; only rank 0 logs and writes files. See ``training/distributed.py`` for why this is
a manual all-reduce rather than DDP, and how the noise is kept identical to a single-process run.

Speed switches (``train.*``): ``amp`` = "bf16" (autocast, CPU and GPU; no scaling needed, bf16 has fp32's range)
or "fp16" (CUDA only, with one GradScaler per optimizer group, so an overflow skips only that group's step), or
"auto": resolved once at start (``Trainer.amp``) to bf16 on a CPU where a start-up timing shows bf16 convolutions
clearly faster than fp32 (``udeblur.device.cpu_prefers_bf16``) or a CUDA device with bf16, to "none" elsewhere;
``channels_last`` (NHWC networks and inputs); ``compile`` (``nn.Module.compile`` on each sub-network the
objective calls, which keeps state-dict keys unchanged so checkpoints stay interchangeable).
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..archs.noise import sharded_noise
from ..config import ConfigError, ExperimentConfig, TrainConfig, config_from_dict
from ..device import cpu_has_fast_bf16, cpu_prefers_bf16
from ..device import resolve_device as _resolve_device
from ..losses.terms import BAR_KEYS
from ..model import Discriminators, Translator
from ..model_files import CheckpointError, export_deblur_net, load_checkpoint, save_checkpoint
from ..visualize import image_grid, to_numpy_image
from . import distributed
from .kernel_prior import KernelBank
from .objective import discriminator_objective, generator_objective, make_fakes
from .run_logger import RunLogger

CHECKPOINT_NAME = "checkpoints/last.pt"
EXPORT_NAME = "deblur.safetensors"
# settings that may differ when a run is resumed; everything else comes from the checkpoint
RESUMABLE_OVERRIDES = {
    # init_from only matters before the first checkpoint
    "train": ("total_steps", "log_every", "sample_every", "checkpoint_every", "snapshot_every", "init_from", "device",
              "tensorboard", "amp", "channels_last", "compile"),
    "data": ("num_workers",),
}


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, or the run folder is in an unexpected state)."""


def resolve_device(name: str) -> torch.device:
    """udeblur.device.resolve_device, with the config key in the error."""
    try:
        return _resolve_device(name)
    except ValueError as exc:
        raise TrainingError(f"train.device: {exc}") from exc


def resolve_amp(amp: str, device: torch.device) -> str:
    """``train.amp`` as run: "auto" -> "bf16" where measured clearly faster on this CPU (or a bf16-capable CUDA
    device), else "none"; the other values as they are."""
    if amp != "auto":
        return amp
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "none"
    return "bf16" if device.type == "cpu" and cpu_prefers_bf16() else "none"


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Constant for the first ``lr_decay_start`` of training, then decays to ``lr_final_ratio`` at the end.

    "exponential" is the paper's schedule, "linear" the authors' code (DRIT's lambda rule).
    """
    start = int(cfg.lr_decay_start * cfg.total_steps)
    if cfg.lr_decay == "none" or step < start:
        return 1.0
    frac = min(1.0, (step - start) / max(1, cfg.total_steps - 1 - start))
    if cfg.lr_decay == "exponential":
        return cfg.lr_final_ratio**frac
    return 1.0 - frac * (1.0 - cfg.lr_final_ratio)


def _set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Trainer:
    def __init__(
        self,
        cfg: ExperimentConfig,
        run_dir: str | Path,
        resume: bool = False,
        progress: bool = True,
        data_root: str | Path | None = None,
    ):
        self.run_dir = Path(run_dir)
        # joins the torchrun job if there is one (no-op in a single process)
        self.dist = distributed.setup(cfg.train.device)
        ckpt_path = self.run_dir / CHECKPOINT_NAME
        state: dict[str, Any] | None = None
        if ckpt_path.exists():
            if not resume:
                raise TrainingError(
                    f"{self.run_dir} already holds a checkpoint ({ckpt_path}); pass --resume to continue it "
                    "or choose another output folder"
                )
            state = load_checkpoint(ckpt_path, require=("step", "config"))
            cfg = self._merge_resume_config(state["config"], cfg)
        self.cfg = cfg
        self.progress = progress
        self.device = resolve_device(cfg.train.device)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)  # one GPU per process
        t = cfg.train
        if t.batch_size % self.dist.world_size:
            raise ConfigError(
                f"train.batch_size={t.batch_size} is the global batch and must be divisible by the world size "
                f"{self.dist.world_size} (each process takes batch_size / world_size samples)"
            )
        if t.unpaired_batch % self.dist.world_size:
            raise ConfigError(f"train.unpaired_batch={t.unpaired_batch} must be divisible by the world size "
                              f"{self.dist.world_size}")
        self.amp = resolve_amp(t.amp, self.device)  # "auto" is decided once, here, for the whole run
        if self.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError(f"train.amp=fp16 needs a CUDA device (gradient scaling), not {self.device}; "
                              "use train.amp=bf16 on the CPU")
        if t.amp == "bf16" and self.device.type == "cpu" and not cpu_has_fast_bf16():
            warnings.warn(
                "train.amp=bf16 on a CPU without native bf16 instructions (no AVX512-BF16/AMX): bf16 convolutions "
                "are emulated and run 10-100x SLOWER than fp32 here; use train.amp=none on this machine",
                stacklevel=2,
            )
        # the same seed on every rank: identical initial weights and an identical noise RNG (see distributed.py)
        torch.manual_seed(t.seed)

        self.translator = Translator(cfg.model).to(self.device)
        self.discs = Discriminators(cfg.model, random_z=cfg.loss.random_z_adv > 0).to(self.device)
        if t.channels_last:
            self.translator.to(memory_format=torch.channels_last)
            self.discs.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.translator.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
        self.opt_d = torch.optim.Adam(self.discs.parameters(), lr=t.lr, betas=(t.beta1, t.beta2))
        # fp16 needs loss scaling; one scaler per group since the groups step at different rates
        self.scaler_g = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        self.scaler_d = torch.amp.GradScaler("cuda") if self.amp == "fp16" else None
        self._amp_skips = 0
        self._noise_draws: dict[tuple, list] = {}  # make_fakes: noise of skipped passes, by input shape
        self.step = 0
        self._perceptual = self._make_perceptual()
        self._kernel_bank = (
            KernelBank(cfg.model.kernel_size, seed=t.seed)
            if cfg.loss.kernel_prior > 0 or cfg.loss.prior_cycle > 0
            else None
        )
        if state is not None:
            try:
                self._load_state(state)
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # loads, but is not a whole training state
                detail = " ".join(str(exc).split())[:200]  # one line: torch's messages span several
                raise CheckpointError(ckpt_path, f"damaged or foreign training checkpoint, cannot resume from it "
                                      f"({type(exc).__name__}: {detail}); move it away to start anew") from exc
        elif t.init_from:
            self._warm_start(Path(t.init_from).expanduser())
        # DDP's guarantee: all ranks start from rank 0's weights, whatever happened above
        distributed.broadcast_module(self.translator, self.dist)
        distributed.broadcast_module(self.discs, self.dist)
        self._compile_pending = False
        if t.compile:
            self._compile_networks()
        self._data_root = data_root
        self._sample_batch: dict[str, torch.Tensor] | None = None
        self.interrupted = False  # fit() stopped early on Ctrl-C/SIGINT (after saving): the command exits non-zero

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _merge_resume_config(saved: dict[str, Any], given: ExperimentConfig) -> ExperimentConfig:
        """The checkpoint's config, with only RESUMABLE_OVERRIDES taken from ``given``.

        Any other difference is an error rather than being silently ignored: a resumed run must be the run it was.
        """
        saved_cfg = config_from_dict(saved).to_dict()
        given_dict = given.to_dict()
        changed = [
            f"{section}.{key}: {saved_cfg[section][key]!r} -> {value!r}"
            for section, values in given_dict.items()
            if isinstance(values, dict)
            for key, value in values.items()
            if key not in RESUMABLE_OVERRIDES.get(section, ()) and saved_cfg[section][key] != value
        ]
        if changed:
            raise ConfigError(
                "resuming a run with a different config; only "
                + ", ".join(f"{s}.{k}" for s, ks in RESUMABLE_OVERRIDES.items() for k in ks)
                + " may change. Differences: " + "; ".join(changed)
            )
        merged = {k: dict(v) if isinstance(v, dict) else v for k, v in saved_cfg.items()}
        for section, keys in RESUMABLE_OVERRIDES.items():
            for key in keys:
                merged[section][key] = given_dict[section][key]
        return config_from_dict(merged)

    def _warm_start(self, path: Path) -> None:
        """Weights from an exported model or a checkpoint; the architecture must be this config's."""
        from dataclasses import asdict

        from ..inference.pretrained import bundled_name, model_path
        from ..model_files import CheckpointError, load_deblur_net

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

    def _make_perceptual(self):
        w = self.cfg.loss
        if w.perceptual <= 0:
            return None
        from ..archs.vgg import load_perceptual_net
        from ..losses.perceptual import perceptual_loss

        net = load_perceptual_net(w.perceptual_net, w.perceptual_layer, w.vgg19_weights, device=self.device)
        layer = w.perceptual_layer
        return lambda x, y: perceptual_loss(net, x, y, layer)

    def _autocast(self):
        if self.amp == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        if self.amp == "fp16":
            return torch.autocast(self.device.type, dtype=torch.float16)
        return contextlib.nullcontext()

    def _noise(self):
        """Distributed: every rank draws the global batch's noise and keeps its rows (archs/noise.py)."""
        if self.dist.enabled:
            return sharded_noise(self.dist.rank, self.dist.world_size)
        return contextlib.nullcontext()

    def _compile_networks(self) -> None:
        """torch.compile each sub-network the objective calls directly (compiling the top modules would not
        help: their ``forward`` is never called). ``Module.compile`` works in place, so parameter names, state
        dicts and checkpoints are unchanged. Compilation is lazy: failures surface at the first step."""
        if not hasattr(nn.Module, "compile"):
            raise ConfigError("train.compile=true needs torch >= 2.2 (nn.Module.compile)")
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
        self._compile_pending = True

    def _data_loader(self):
        from ..config import replace
        from ..data.builtin import resolve_data_root
        from ..data.datasets import make_train_loader

        # rank 0 generates the built-in data (if needed) before the others look at the folder
        if self.dist.is_main:
            root = self._data_root or resolve_data_root(self.cfg, progress=self.progress)
        distributed.barrier(self.dist)
        if not self.dist.is_main:
            root = self._data_root or resolve_data_root(self.cfg, progress=False)
        # train.batch_size is the global batch; the sampler hands each rank its share of the global key list
        per_rank = self.cfg.train.batch_size // self.dist.world_size
        unpaired = self.cfg.train.unpaired_batch
        cfg = replace(self.cfg, data={"root": str(root)},
                      train={"batch_size": per_rank, "unpaired_batch": unpaired // self.dist.world_size})
        loader, dataset = make_train_loader(cfg, start_step=self.step, rank=self.dist.rank,
                                            world_size=self.dist.world_size, unpaired_batch=unpaired)
        # DataLoader draws its workers' base seed from the global RNG unless it has its own generator;
        # that draw would shift the training RNG stream differently in a resumed run.
        loader.generator = torch.Generator().manual_seed(self.cfg.train.seed)
        return loader, dataset

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            # the training device's generator only: it is in the same state on every rank, so the checkpoint
            # resumes on any GPU / world size
            rng["cuda_device"] = torch.cuda.get_rng_state(self.device)
        state = {
            "step": self.step,
            "config": self.cfg.to_dict(),
            "translator": self.translator.state_dict(),
            "discriminators": self.discs.state_dict(),
            "optim_g": self.opt_g.state_dict(),
            "optim_d": self.opt_d.state_dict(),
            "rng": rng,
        }
        for name, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler is not None:
                state[name] = scaler.state_dict()
        return state

    def _load_state(self, state: dict[str, Any]) -> None:
        self.translator.load_state_dict(state["translator"])
        self.discs.load_state_dict(state["discriminators"])
        self.opt_g.load_state_dict(state["optim_g"])
        self.opt_d.load_state_dict(state["optim_d"])
        self.step = int(state["step"])
        torch.set_rng_state(state["rng"]["torch"])
        if self.device.type == "cuda":
            if "cuda_device" in state["rng"]:
                torch.cuda.set_rng_state(state["rng"]["cuda_device"], self.device)
            elif "cuda" in state["rng"] and len(state["rng"]["cuda"]) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])  # checkpoints written before cuda_device
        for name, scaler in (("scaler_g", self.scaler_g), ("scaler_d", self.scaler_d)):
            if scaler is not None and name in state:
                scaler.load_state_dict(state[name])

    def save(self) -> Path:
        """Full state (atomic) plus the inference-only export beside it. Only rank 0 writes."""
        path = self.run_dir / CHECKPOINT_NAME
        if not self.dist.is_main:
            return path
        save_checkpoint(path, self.state_dict())
        export_deblur_net(
            self.translator.deblur_net(), self.cfg.model, self.run_dir / EXPORT_NAME, step=str(self.step),
            name=self.cfg.name,
        )
        every = self.cfg.train.snapshot_every
        if every > 0 and self.step % every == 0:
            export_deblur_net(
                self.translator.deblur_net(), self.cfg.model,
                self.run_dir / "snapshots" / f"deblur_{self.step:07d}.safetensors", step=str(self.step),
                name=self.cfg.name,
            )
        return path

    # ------------------------------------------------------------------ one iteration
    def _set_lr(self) -> float:
        lr = self.cfg.train.lr * lr_factor(self.step, self.cfg.train)
        for opt in (self.opt_g, self.opt_d):
            for group in opt.param_groups:
                group["lr"] = lr
        return lr

    def _backward_step(self, loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, group: str,
                       terms: dict[str, torch.Tensor],
                       scaler: torch.amp.GradScaler | None = None) -> tuple[float, dict[str, float]]:
        """Backward, (distributed) gradient averaging, clipping and the optimizer step of one group.

        Returns the gradient norm and the loss terms as floats (averaged over all ranks when distributed, so
        rank 0 logs global-batch numbers and every rank takes the same decision on a non-finite loss).
        """
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        if not self.dist.enabled:
            self._check_finite(values, terms, group)  # before backward: no wasted work on a diverged loss
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        params = [p for p in module.parameters() if p.grad is not None]
        if self.dist.enabled:
            # one flat all-reduce: gradients and loss terms together (distributed.py explains why not DDP)
            values = distributed.all_reduce_gradients(params, self.dist, values)
            self._check_finite(values, terms, group)
        if scaler is not None:
            scaler.unscale_(opt)
        clip = self.cfg.train.grad_clip if self.cfg.train.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip)) if params else 0.0
        if not math.isfinite(norm):
            if scaler is not None:
                # fp16 gradient overflow: GradScaler skips this step and lowers the scale. Only a long run of
                # skips means real divergence.
                scaler.step(opt)
                scaler.update()
                self._amp_skips += 1
                if self._amp_skips <= _MAX_AMP_SKIPS:
                    return norm, dict(zip(terms, values.tolist(), strict=True))
            raise TrainingError(
                f"step {self.step}: non-finite {group} gradient norm. Lower train.lr, set train.grad_clip, "
                f"or resume from {self.run_dir / CHECKPOINT_NAME}"
            )
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
            self._amp_skips = 0
        else:
            opt.step()
        return norm, dict(zip(terms, values.tolist(), strict=True))

    def _check_finite(self, values: torch.Tensor, terms: dict[str, torch.Tensor], group: str) -> None:
        finite = torch.isfinite(values)
        if not bool(finite.all()):
            bad = [k for k, ok in zip(terms, finite.tolist(), strict=True) if not ok]
            raise TrainingError(
                f"step {self.step}: {group} loss is not finite (terms {bad or list(terms)}). Lower train.lr, "
                f"set train.grad_clip, or resume from {self.run_dir / CHECKPOINT_NAME}"
            )

    def train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """One iteration: a D step, and a G step every g_every iterations. Returns logged numbers.

        ``batch`` is this process's share of the global batch (all of it in a single process).
        """
        if self._compile_pending:
            try:
                logs = self._train_step(batch)
            except TrainingError:
                raise
            except Exception as exc:  # compilation happens here, lazily; say which switch to turn off
                raise TrainingError(
                    f"train.compile=true: torch.compile failed at the first step ({type(exc).__name__}: "
                    f"{str(exc)[:500]}); set train.compile=false"
                ) from exc
            self._compile_pending = False
            return logs
        return self._train_step(batch)

    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        w = self.cfg.loss
        s = batch["sharp"].to(self.device, non_blocking=True)
        b = batch["blurred"].to(self.device, non_blocking=True)
        if self.cfg.train.channels_last:
            s = s.contiguous(memory_format=torch.channels_last)
            b = b.contiguous(memory_format=torch.channels_last)
        g_turn = (self.step + 1) % self.cfg.train.g_every == 0
        self.translator.train()
        logs: dict[str, float] = {"lr": self._set_lr()}
        s_all = s
        n_unpaired = self.cfg.train.unpaired_batch // self.dist.world_size
        if 0 < n_unpaired < s.shape[0]:
            s, b = s[:n_unpaired], b[:n_unpaired]  # the blur prior's terms still see every sharp crop

        grad_ctx = contextlib.nullcontext() if g_turn else torch.no_grad()
        with grad_ctx, self._autocast(), self._noise():
            fakes = make_fakes(self.translator, s, b, w, for_generator=g_turn, draws=self._noise_draws)

        with self._autocast():
            d_terms = discriminator_objective(self.discs, s, b, fakes, w)
        if d_terms:
            d_loss = sum(d_terms.values())
            logs["grad_norm_d"], d_values = self._backward_step(
                d_loss, self.discs, self.opt_d, "discriminator", d_terms, self.scaler_d
            )
            logs.update(d_values)

        if g_turn:
            _set_requires_grad(self.discs, False)  # G's loss needs no gradient for D's weights
            try:
                prior = None
                if self._kernel_bank is not None:
                    # each rank draws its own share (the rank is folded into the step index)
                    prior = self._kernel_bank.draw(s_all.shape[0], self.step * self.dist.world_size + self.dist.rank)
                with self._autocast(), self._noise():
                    g_terms, _ = generator_objective(
                        self.translator, self.discs, s, b, fakes, w, self._perceptual, prior, prior_sharp=s_all
                    )
                g_loss = sum(g_terms.values())
                logs["grad_norm_g"], g_values = self._backward_step(
                    g_loss, self.translator, self.opt_g, "generator", g_terms, self.scaler_g
                )
            finally:
                _set_requires_grad(self.discs, True)
            logs.update(g_values)
            logs["g_total"] = sum(g_values.values())
        self.step += 1
        return logs

    # ------------------------------------------------------------------ samples
    def sample_grid(self, n: int = 4) -> Any:
        """Rows of blurred | deblurred | sharp | re-blurred | cycle, on a fixed batch, with z = mu."""
        if self._sample_batch is None:
            return None
        s = self._sample_batch["sharp"][:n].to(self.device)
        b = self._sample_batch["blurred"][:n].to(self.device)
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            p = self.translator.preview(s, b)
        s_b, b_s, s_hat = p["s_b"], p["b_s"], p["s_hat"]
        rows = [[to_numpy_image(t[i]) for t in (b, s_b, s, b_s, s_hat)] for i in range(s.shape[0])]
        return image_grid(rows)

    # ------------------------------------------------------------------ loop
    def fit(self, max_steps: int | None = None, time_limit: float | None = None) -> Path:
        """Train until ``train.total_steps`` (or ``max_steps`` more steps, or ``time_limit`` seconds).

        Returns the checkpoint path. Ctrl-C finishes the current step, saves a checkpoint and stops, so nothing is
        lost and the resumed run is still exact; a second Ctrl-C stops at once and keeps the last checkpoint.
        A run stopped early continues with ``resume=True``.
        """
        started = time.perf_counter()
        t = self.cfg.train
        end = t.total_steps if max_steps is None else min(t.total_steps, self.step + max_steps)
        main = self.dist.is_main  # only rank 0 writes files, logs and shows progress
        logger: RunLogger | None = None
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "config.yaml").write_text(self.cfg.to_yaml())
            logger = RunLogger(self.run_dir, tensorboard=t.tensorboard, keep_until=self.step)
        loader, dataset = self._data_loader()
        if main:
            self._sample_batch = _fixed_batch(dataset, 4, t.seed)
        bar = tqdm(total=end, initial=self.step, disable=not (self.progress and main), desc=self.cfg.name,
                   unit="it", dynamic_ncols=True)
        it = iter(loader)
        last_time, last_step, saved_step = time.perf_counter(), self.step, None
        stop = _GracefulStop()
        try:
            while self.step < end:
                if time_limit is not None:
                    # every rank must stop at the same step, or the others would wait forever in all-reduce
                    over = distributed.any_rank(time.perf_counter() - started > time_limit, self.dist, self.device)
                    if over:
                        bar.write(f"time limit of {time_limit:.0f} s reached at step {self.step}")
                        break
                logs = self.train_step(next(it))
                bar.update(1)
                final = self.step == end
                if logger is not None and (self.step % t.log_every == 0 or final):
                    now = time.perf_counter()
                    logs["sec_per_it"] = (now - last_time) / max(1, self.step - last_step)
                    last_time, last_step = now, self.step
                    logger.scalars(self.step, logs)
                    bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items() if k in BAR_KEYS})
                if logger is not None and (self.step % t.sample_every == 0 or final):
                    grid = self.sample_grid()
                    if grid is not None:
                        logger.image(self.step, "samples", grid)
                if (self.step % t.checkpoint_every == 0 or final
                        or (t.snapshot_every > 0 and self.step % t.snapshot_every == 0)):
                    self.save()
                    saved_step = self.step
                if distributed.any_rank(stop.requested, self.dist, self.device):
                    bar.write(f"stopping at step {self.step} (Ctrl-C); saving")
                    self.interrupted = True
                    break
            if saved_step != self.step:  # stopped early (time limit): keep a sample and the weights
                grid = self.sample_grid() if logger is not None else None
                if logger is not None and grid is not None:
                    logger.image(self.step, "samples", grid)
                self.save()
        except KeyboardInterrupt:
            # raised inside a step: weights and optimizer state may be half-updated, so keep the last checkpoint
            bar.write(f"interrupted inside step {self.step + 1}: the last checkpoint ({self.run_dir / CHECKPOINT_NAME})"
                      " is kept")
            raise
        finally:
            stop.restore()
            bar.close()
            if logger is not None:
                logger.close()
            del it
        # the others wait for rank 0's last checkpoint, so every rank returns a path that exists
        distributed.barrier(self.dist)
        if getattr(dataset, "bad_files", None):
            where = f" (rank {self.dist.rank})" if self.dist.enabled else ""
            print(f"warning{where}: {len(dataset.bad_files)} unreadable image file(s) were skipped during training")
        return self.run_dir / CHECKPOINT_NAME


class _GracefulStop:
    """First Ctrl-C asks the loop to stop after the current step; a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


# consecutive fp16 overflow skips tolerated before the run is declared diverged (GradScaler halves the scale each
# time: 30 halvings take the default 65536 down to ~6e-5)
_MAX_AMP_SKIPS = 30


def _fixed_batch(dataset: Any, n: int, seed: int) -> dict[str, torch.Tensor]:
    """A batch that stays the same all run long, for comparable sample grids."""
    n_sharp, n_blurred = len(dataset.files["sharp"]), len(dataset.files["blurred"])
    items = [dataset[(i % n_sharp, i % n_blurred, seed * 1000 + i)] for i in range(n)]
    return {k: torch.stack([item[k] for item in items]) for k in ("sharp", "blurred")}


def train(cfg: ExperimentConfig, run_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train a model and return the path of its final checkpoint (the export sits in run_dir/deblur.safetensors)."""
    return Trainer(cfg, run_dir, resume=resume, progress=progress).fit()


__all__ = ["Trainer", "TrainingError", "lr_factor", "resolve_amp", "train"]
