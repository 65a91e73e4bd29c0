"""Typed experiment configuration: dataclasses, YAML presets and dotted overrides.

A config is plain data. Nothing mutates it after loading; components receive the sub-config they need.

    cfg = load_config("small", overrides=["train.total_steps=2000", "loss.perceptual=0"])
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

import yaml

PRESETS = ("paper", "small", "tiny", "text", "text_nafnet")
MAX_CROP = 4096  # largest data.crop_size: beyond it one batch alone needs tens of GB


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which key and why."""


@dataclass
class ModelConfig:
    """Sizes of the networks. Defaults are the authors' (DRIT-based) code at 128x128."""

    generator: str = "drit"  # content encoders + generators by type (archs/registry.py): "drit" or "nafnet"
    channels: int = 3  # image channels (3 RGB, 1 grayscale domains)
    width: int = 64  # first conv width; content code has 4*width channels
    content_res_blocks: int = 3  # private residual blocks per content encoder (plus ONE shared block)
    content_noise: float = 1.0  # std of the N(0,1) noise added to the content code while training
    blur_latent: int = 8  # size of the blur code z_b
    blur_blocks: int = 3  # residual down-blocks of the blur encoder
    gen_res_blocks: int = 3  # residual blocks per generator branch (after ONE shared block)
    disc_scales: int = 3
    disc_layers: int = 4
    disc_width: int = 64
    init_std: float = 0.02  # N(0, std) initialisation of convolutions
    # ablation switches (method.md / the paper's ablation study); the paper's model has both on
    blur_encoder: bool = True  # False: no E^b, the generators get z = 0 (CycleGAN-like translation)
    shared_content: bool = True  # False: E_S^c and E_B^c each get their own last residual block
    # additions beyond the paper (off in `paper`): see the `text` preset
    global_skip: bool = False  # generators predict a correction to their source image (identity at init)
    kernel_size: int = 0  # > 0: E^b also predicts an explicit K x K blur kernel (for loss.reblur)
    # G_B starts from k * s (E^b's kernel applied to the sharp image) and learns only the rest (noise, tone):
    # the cross-cycle then trains the deblurring path on physically blurred sharp images. Needs both above.
    blur_from_kernel: bool = False


@dataclass
class LossConfig:
    """Loss weights. 0 switches a term off (and skips its computation). Paper weights by default."""

    gan_mode: str = "bce"  # "bce" (the paper's) or "lsgan"
    adv: float = 1.0
    kl: float = 0.01
    cycle: float = 10.0
    perceptual: float = 0.1
    self_recon: float = 10.0  # authors' code, not in the paper's text
    random_z_adv: float = 1.0  # authors' code: 2nd pair of discriminators on random-z outputs
    latent_regression: float = 10.0  # authors' code: E^b(G_B(c_s, z_rand)) -> z_rand
    reblur: float = 0.0  # beyond the paper: || k * s_b - b ||_1 with E^b's explicit kernel k (needs model.kernel_size)
    # beyond the paper: sharp crops blurred by kernels k' from a blur prior (training/kernel_prior.py) teach
    kernel_prior: float = 0.0  # E^b's kernel head to measure blur: || E^b_k(k' * s) * s - k' * s ||_1
    prior_cycle: float = 0.0  # the deblurring path: || G_S(k' * s + noise) - s ||_1
    # "l1" or "l2" (mean squared error) for loss.prior_cycle, and for the supervised reference's pixel term. Under
    # heavy blur the L1-optimal estimate is the per-pixel posterior median (ink or paper on two-tone text: crisp,
    # possibly wrong glyphs), the L2-optimal one the posterior mean (MMSE)
    prior_cycle_norm: str = "l1"
    # the prior's noise: "gaussian" (read noise) or "camera" (also shot noise and JPEG, as phone photos have)
    prior_noise: str = "gaussian"
    perceptual_net: str = "vgg16"  # "vgg16" (offline ImageNet weights) or "vgg19" (the paper's; needs a file)
    perceptual_layer: str = "conv3_3"
    vgg19_weights: str | None = None  # path to torchvision's vgg19 ImageNet state dict (vgg19-dcbb9e9d.pth)


@dataclass
class DataConfig:
    """Where the unpaired data comes from.

    ``root`` holds ``train/sharp`` + ``train/blurred`` (or ``sharp``/``blurred``, or CycleGAN's
    ``trainA``/``trainB``) and optionally a paired ``test/{sharp,blurred}``. ``root: null`` means the
    built-in text-document domain, generated on first use into the cache.
    """

    root: str | None = None
    # your own blurred photos (a folder): they replace the blurred training set, the sharp set stays data.root's
    # (the built-in text domain's without one), as when fine-tuning a model on the blur of one camera
    blurred: str | None = None
    load_size: int = 144  # shorter side resized to this before cropping (0: no resize)
    crop_size: int = 128
    flip: bool = True
    num_workers: int = 0
    builtin: str = "text"  # the built-in (generated) domain used without data.root (registry: data/builtin.py)
    builtin_count: int = 2000  # crops per training set when the built-in text domain is generated
    builtin_test_count: int = 64
    # look of the built-in text pages: "plain" (dark ink on light paper) or "documents" (coloured and grey paper,
    # light-on-dark print, strong shading and vignetting, JPEG and shot noise on the blurred set)
    builtin_appearance: str = "plain"


@dataclass
class TrainConfig:
    method: str = "disentangled"  # the training method (methods/registry.py): "disentangled" or "supervised"
    batch_size: int = 2
    total_steps: int = 100_000
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_decay: str = "exponential"  # "exponential" (paper), "linear" (authors' code) or "none"
    lr_decay_start: float = 0.5  # fraction of total_steps trained at constant lr
    lr_final_ratio: float = 0.01  # lr at the last step relative to the initial one
    g_every: int = 2  # encoders/generators step every g_every iterations; discriminators every one
    # > 0: the unpaired terms (adversarial, cycle, self-reconstruction, KL, re-blur) use only the first
    # unpaired_batch images of each batch, the blur prior's terms all batch_size sharp crops (0: all for both)
    unpaired_batch: int = 0
    # the authors' (DRIT) use of a batch: its first half goes through the encoded branch (every unpaired term but the
    # random-z ones), its second half gives the real images of the random-z discriminators, whose fakes are made
    # from the first half's content with a random z. false: every image goes through every network (more signal
    # per step, more compute). Needs loss.random_z_adv or loss.latent_regression and an even number of unpaired images
    random_z_split: bool = False
    grad_clip: float = 0.0  # clip total grad norm per optimizer group (0: off, only the NaN guard)
    seed: int = 0
    # warm start (fresh runs only): an exported .safetensors (the deblurring path; E_S^c starts as a copy of
    # E_B^c) or a training checkpoint .pt (all networks); optimizer state and step start anew
    init_from: str | None = None
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    # "none", "bf16" (CPU/GPU autocast), "fp16" (GPU, with gradient scaling) or "auto" (bf16 where a start-up timing
    # shows it clearly faster: native-bf16 CPUs, bf16-capable GPUs; none elsewhere)
    amp: str = "none"
    channels_last: bool = False  # NHWC memory layout for the networks
    compile: bool = False  # torch.compile the networks
    log_every: int = 10
    sample_every: int = 500
    checkpoint_every: int = 1000
    snapshot_every: int = 0  # > 0: also keep the deblurring export of every such step in snapshots/ (for curves)
    tensorboard: bool = True


@dataclass
class ExperimentConfig:
    name: str = "udeblur"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# removed options: configs and model files written before still carry them at their "off" value, which is dropped;
# any other value asked for what no longer exists. key -> (the accepted value, why it went)
RETIRED_KEYS: dict[type, dict[str, tuple[Any, str]]] = {
    ModelConfig: {"source_skips": (False, "the drit generator's U-Net source skips were removed (no measured gain)")},
}


def build_dataclass(cls: type, data: dict[str, Any], where: str) -> Any:
    """``cls`` (a config dataclass) from a mapping; ConfigError names the key (``where``-dotted) on a bad one."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    retired = RETIRED_KEYS.get(cls, {})
    for key in retired.keys() & data.keys():
        accepted, why = retired[key]
        if data[key] != accepted:
            path = f"{where}.{key}" if where else key
            raise ConfigError(f"{path}: {data[key]!r} is no longer supported, only {accepted!r}: {why}; "
                              "a model trained with it needs the udeblur version that trained it")
    data = {k: v for k, v in data.items() if k not in retired}
    hints = get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {sorted(unknown)}; known: {sorted(names)}")
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        hint = hints[key]
        path = f"{where}.{key}" if where else key
        if is_dataclass(hint):
            kwargs[key] = build_dataclass(hint, value, path)
        else:
            kwargs[key] = _coerce(value, hint, path)
    return cls(**kwargs)


# YAML 1.1 (PyYAML) reads ``2e-4`` and ``1E5`` as strings (it wants ``2.0e-4``); people write numbers that way
_SCIENTIFIC = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _number(value: Any) -> Any:
    """``value``, or the float it spells in scientific notation."""
    if isinstance(value, str) and _SCIENTIFIC.fullmatch(value.strip()):
        return float(value.strip())
    return value


def _coerce(value: Any, hint: Any, path: str) -> Any:
    text = str(hint)
    if value is None:
        if "None" in text:
            return None
        raise ConfigError(f"{path}: may not be null")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if hint in (int, float):
        value = _number(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if hint is str or "str" in text:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    cfg = build_dataclass(ExperimentConfig, data, "")
    validate(cfg)
    return cfg


def validate(cfg: ExperimentConfig) -> None:
    """Reject values that would only fail later, deep inside training."""
    choices = {
        "loss.gan_mode": (cfg.loss.gan_mode, ("bce", "lsgan")),
        "loss.perceptual_net": (cfg.loss.perceptual_net, ("vgg16", "vgg19")),
        "loss.prior_cycle_norm": (cfg.loss.prior_cycle_norm, ("l1", "l2")),
        "loss.prior_noise": (cfg.loss.prior_noise, ("gaussian", "camera")),
        "train.lr_decay": (cfg.train.lr_decay, ("exponential", "linear", "none")),
        "train.amp": (cfg.train.amp, ("none", "bf16", "fp16", "auto")),
        "data.builtin_appearance": (cfg.data.builtin_appearance, ("plain", "documents")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not one of {allowed}")
    from .archs.registry import generator_type, generator_types

    if cfg.model.generator not in generator_types():
        raise ConfigError(f"model.generator: {cfg.model.generator!r} is not one of {generator_types()}")
    multiple = generator_type(cfg.model.generator).size_multiple(cfg.model)
    if cfg.data.crop_size % multiple:
        raise ConfigError(f"data.crop_size: {cfg.data.crop_size} must be a multiple of {multiple} for "
                          f"model.generator={cfg.model.generator}")
    if cfg.model.channels not in (1, 3):
        raise ConfigError(f"model.channels: {cfg.model.channels} (must be 1 or 3)")
    if cfg.data.crop_size % 4:
        raise ConfigError(f"data.crop_size: {cfg.data.crop_size} must be a multiple of 4")
    if cfg.data.load_size and cfg.data.load_size < cfg.data.crop_size:
        raise ConfigError(f"data.load_size {cfg.data.load_size} is smaller than crop_size {cfg.data.crop_size}")
    m = cfg.model
    if min(m.width, m.disc_width, m.blur_latent, m.disc_scales, m.disc_layers, m.blur_blocks) < 1:
        raise ConfigError("model: width, disc_width, blur_latent, disc_scales, disc_layers, blur_blocks must be >= 1")
    if m.blur_from_kernel and not (m.global_skip and m.kernel_size > 0 and m.blur_encoder):
        raise ConfigError("model.blur_from_kernel needs model.global_skip, model.kernel_size > 0 and the blur encoder")
    if m.kernel_size and not m.kernel_size % 2:
        raise ConfigError(f"model.kernel_size: {m.kernel_size} must be odd (a kernel has a centre pixel)")
    smallest = max(8, 2 ** (m.blur_blocks + 1))
    if cfg.data.crop_size < smallest:
        raise ConfigError(f"data.crop_size {cfg.data.crop_size} < {smallest}, the smallest input the model takes")
    if not 0.0 < cfg.train.lr_final_ratio <= 1.0:
        raise ConfigError(f"train.lr_final_ratio must be in (0, 1], got {cfg.train.lr_final_ratio}")
    if not 0.0 <= cfg.train.lr_decay_start <= 1.0:
        raise ConfigError("train.lr_decay_start must be a fraction in [0, 1]")
    if not 0 <= cfg.train.unpaired_batch <= cfg.train.batch_size:
        raise ConfigError(f"train.unpaired_batch: {cfg.train.unpaired_batch} must be in [0, train.batch_size]")
    if cfg.train.random_z_split:
        if cfg.loss.random_z_adv <= 0:  # the second half feeds the random-z discriminators; nothing else reads it
            raise ConfigError("train.random_z_split needs the random-z branch's discriminators (loss.random_z_adv "
                              "> 0)")
        unpaired = cfg.train.unpaired_batch or cfg.train.batch_size
        if unpaired % 2:
            raise ConfigError(f"train.random_z_split halves the {unpaired} unpaired images of a batch "
                              "(train.unpaired_batch, else train.batch_size): make it even")
    if cfg.train.g_every < 1 or cfg.train.total_steps < 1 or cfg.train.batch_size < 1:
        raise ConfigError("train.g_every, train.total_steps and train.batch_size must be >= 1")
    if not cfg.model.blur_encoder:
        needs = [k for k in ("kl", "latent_regression", "random_z_adv") if getattr(cfg.loss, k) > 0]
        if needs:
            raise ConfigError(f"model.blur_encoder=false: set loss.{'/'.join(needs)} to 0 (they act on the blur code)")
    for term in ("reblur", "kernel_prior"):  # both act on E^b's explicit kernel
        if getattr(cfg.loss, term) > 0 and (cfg.model.kernel_size <= 0 or not cfg.model.blur_encoder):
            raise ConfigError(f"loss.{term} > 0 needs model.kernel_size > 0 (the blur encoder's explicit kernel)")
    if cfg.loss.prior_cycle > 0 and cfg.model.kernel_size <= 0:
        raise ConfigError("loss.prior_cycle > 0 needs model.kernel_size > 0 (the size of the prior's kernels)")
    if cfg.model.kernel_size < 0 or (cfg.model.kernel_size and cfg.model.kernel_size % 2 == 0):
        raise ConfigError(f"model.kernel_size: {cfg.model.kernel_size} must be 0 or a positive odd number")
    for section in ("model", "loss", "data", "train"):
        part = getattr(cfg, section)
        for f in fields(part):
            value = getattr(part, f.name)
            # NaN passes every "< 0" test and silently switches things off; infinities are never meant
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{section}.{f.name}: expected a finite number, got {value}")
    for f in fields(LossConfig):
        value = getattr(cfg.loss, f.name)
        if isinstance(value, float) and value < 0:
            raise ConfigError(f"loss.{f.name}: weights must be >= 0, got {value}")
    t = cfg.train
    if not t.lr > 0:
        raise ConfigError(f"train.lr: the learning rate must be > 0, got {t.lr} (the presets use 2e-4)")
    for key in ("beta1", "beta2"):
        if not 0.0 <= getattr(t, key) < 1.0:
            raise ConfigError(f"train.{key}: Adam's beta must be in [0, 1), got {getattr(t, key)}")
    if t.grad_clip < 0:
        raise ConfigError(f"train.grad_clip: {t.grad_clip} must be >= 0 (0: no clipping)")
    for key in ("log_every", "sample_every", "checkpoint_every"):
        if getattr(t, key) < 1:
            raise ConfigError(f"train.{key}: {getattr(t, key)} must be >= 1 (a number of steps)")
    if t.snapshot_every < 0:
        raise ConfigError(f"train.snapshot_every: {t.snapshot_every} must be >= 0 (0: no snapshots)")
    d = cfg.data
    if d.crop_size > MAX_CROP:
        raise ConfigError(f"data.crop_size: {d.crop_size} is over {MAX_CROP} px; a training crop is a patch, "
                          "not a whole image (memory grows with its square): use 128 or 256")
    if d.load_size < 0 or d.num_workers < 0 or d.builtin_count < 1 or d.builtin_test_count < 1:
        raise ConfigError("data.load_size and data.num_workers must be >= 0, data.builtin_count and "
                          "data.builtin_test_count >= 1")
    if m.content_noise < 0 or not m.init_std > 0:
        raise ConfigError(f"model.content_noise must be >= 0 and model.init_std > 0, got {m.content_noise} and "
                          f"{m.init_std}")


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def preset_path(name: str) -> Path:
    return Path(str(resources.files("udeblur.configs").joinpath(f"{name}.yaml")))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror or exc})") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def _resolve(data: dict[str, Any], here: Path, depth: int = 0) -> dict[str, Any]:
    """Apply ``base: <preset or path>`` inheritance."""
    base = data.pop("base", None)
    if base is None:
        return data
    if depth > 8:
        raise ConfigError("config 'base' chain is too deep (cycle?)")
    path = preset_path(base) if base in PRESETS else (here / base)
    return _merge(_resolve(_read_yaml(path), path.parent, depth + 1), data)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key.sub=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: bad value ({exc})") from exc
    return key.strip().split("."), value


def load_config(source: str | Path | None = "small", overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a preset name (``paper``, ``small``, ``tiny``) or a YAML file, then apply ``a.b=value`` overrides."""
    if source is None:
        data: dict[str, Any] = {}
    elif str(source) in PRESETS:
        path = preset_path(str(source))
        data = _resolve(_read_yaml(path), path.parent)
    else:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"{path}: no such config file (presets: {', '.join(PRESETS)})")
        data = _resolve(_read_yaml(path), path.parent)
    return apply_overrides(data, overrides)


def apply_overrides(data: dict[str, Any], overrides: list[str] | None = None) -> ExperimentConfig:
    """Build a config from a (partial) dict plus ``a.b=value`` overrides."""
    data = copy.deepcopy(data)
    for item in overrides or []:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {k} is not a section")
        node[keys[-1]] = value
    return config_from_dict(data)


def replace(cfg: ExperimentConfig, **sections: Any) -> ExperimentConfig:
    """A changed copy: ``replace(cfg, train={"total_steps": 10})``."""
    return config_from_dict(_merge(cfg.to_dict(), sections))


__all__ = [
    "ConfigError",
    "DataConfig",
    "ExperimentConfig",
    "LossConfig",
    "ModelConfig",
    "TrainConfig",
    "config_from_dict",
    "load_config",
    "replace",
]
