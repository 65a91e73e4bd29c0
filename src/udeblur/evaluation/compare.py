"""`udeblur compare`: train every variant at the same budget, evaluate all on one test set, one report.

Compare config (YAML)::

    name: compare-text          # report title
    base: small                 # preset name or YAML path (relative to this file) shared by all variants
    overrides: [train.batch_size=4]   # applied to every trained variant (before the variant's own)
    steps: 800                  # training steps per trained variant (train.total_steps)
    time_limit_minutes: null    # optional wall-clock cap per variant and call; an unfinished one resumes later
    data: null                  # data root; null: the built-in domain (data.builtin) of the base config
    eval: {limit: null, ocr: true, grid_rows: 6}   # also feature_distance (true), face (false: dlib identity)
    variants:                   # built-in names (udeblur compare --list) or custom entries
      - ours
      - cyclegan
      - {name: ours_cycle5, kind: unpaired, overrides: [loss.cycle=5], label: "ours, cycle weight 5"}
      - blurred

Run folders: ``OUT/runs/<variant>/`` (the normal run layout). A variant is finished when its folder holds
``finished.json`` recording the same step budget and overrides; finished variants are skipped, an interrupted
one (checkpoint but no ``finished.json``) resumes from its checkpoint (``Trainer(resume=True)``). Changing a
variant's overrides or the budget while its folder exists is an error rather than a silent mix.
The comparison report is written to ``OUT/report/`` (see :mod:`udeblur.evaluation.evaluate`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..config import ConfigError, ExperimentConfig, config_from_dict, load_config
from .variants import KINDS, Variant, get_variant

__all__ = ["CompareConfig", "load_compare_config", "run_compare"]

FINISHED = "finished.json"


@dataclass
class CompareConfig:
    base: str
    steps: int
    variants: list[Variant]
    overrides: list[str] = field(default_factory=list)
    name: str = "comparison"
    data: str | None = None
    time_limit_minutes: float | None = None
    eval: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def experiment(self, variant: Variant) -> ExperimentConfig:
        # the kind picks the training method, so a variant's overrides (and finished records) stay as written
        method = ["train.method=supervised"] if variant.kind == "supervised" else []
        return load_config(self.base, [*self.overrides, *variant.overrides, *method,
                                       f"train.total_steps={self.steps}", f"name={variant.name}"])


_KEYS = {"name", "base", "overrides", "steps", "time_limit_minutes", "data", "eval", "variants"}
_EVAL_KEYS = {"limit", "ocr", "grid_rows", "feature_distance", "face"}


def _variant(entry: Any, where: str) -> Variant:
    if isinstance(entry, str):
        try:
            return get_variant(entry)
        except KeyError as exc:
            raise ConfigError(f"{where}: {exc.args[0]}") from None
    if not isinstance(entry, dict) or "name" not in entry:
        raise ConfigError(f"{where}: a variant is a built-in name or a mapping with name/kind/overrides")
    unknown = set(entry) - {"name", "kind", "overrides", "label", "note"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    builtin = None
    try:
        builtin = get_variant(entry["name"])
    except KeyError:
        pass
    kind = entry.get("kind", builtin.kind if builtin else "unpaired")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind {kind!r} is not one of {KINDS}")
    overrides = entry.get("overrides", list(builtin.overrides) if builtin else [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError(f"{where}: overrides must be a list of 'a.b=value' strings")
    if kind == "baseline" and (builtin is None or builtin.kind != "baseline"):
        raise ConfigError(f"{where}: baseline {entry['name']!r} is not a built-in baseline")
    label = str(entry.get("label", builtin.label if builtin else ""))
    return Variant(str(entry["name"]), kind, tuple(overrides), label, str(entry.get("note", "")))


def load_compare_config(path: str | Path) -> CompareConfig:
    """Read and check a compare YAML (see the module doc); every trained variant's config is validated now,
    so a typo fails before hours of training rather than in the middle."""
    path = Path(path)
    if not path.exists():
        from importlib import resources

        packaged = Path(str(resources.files("udeblur.configs").joinpath(f"{path.name}")))
        if path.parent == Path(".") and packaged.exists():
            path = packaged  # e.g. `udeblur compare compare_tiny.yaml` finds the shipped one
        else:
            raise ConfigError(f"{path}: no such compare config")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    unknown = set(data) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}")
    for key in ("base", "steps", "variants"):
        if key not in data:
            raise ConfigError(f"{path}: missing key {key!r}")
    base = str(data["base"])
    from ..config import PRESETS

    if base not in PRESETS:
        base = str((path.parent / base).resolve())
    variants = [_variant(v, f"{path}: variants[{i}]") for i, v in enumerate(data["variants"] or [])]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: variant names must be unique, got {names}")
    ev = dict(data.get("eval") or {})
    if set(ev) - _EVAL_KEYS:
        raise ConfigError(f"{path}: eval: unknown key(s) {sorted(set(ev) - _EVAL_KEYS)}")
    steps = data["steps"]
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"{path}: steps must be a positive integer")
    cfg = CompareConfig(base, steps, variants, list(data.get("overrides") or []), str(data.get("name", path.stem)),
                        data.get("data"), data.get("time_limit_minutes"), ev, path)
    if cfg.data is not None:
        cfg.data = str((path.parent / str(cfg.data)).expanduser())
    for v in variants:
        if v.trained:
            try:
                cfg.experiment(v)
            except ConfigError as exc:
                raise ConfigError(f"{path}: variant {v.name}: {exc}") from exc
    return cfg


def _finished_record(cfg: CompareConfig, variant: Variant) -> dict[str, Any]:
    return {"steps": cfg.steps, "overrides": [*cfg.overrides, *variant.overrides], "kind": variant.kind}


def is_finished(run_dir: Path, cfg: CompareConfig, variant: Variant) -> bool:
    marker = run_dir / FINISHED
    if not marker.exists():
        return False
    try:
        have = json.loads(marker.read_text())
    except ValueError:
        return False
    want = _finished_record(cfg, variant)
    if {k: have.get(k) for k in want} != want:
        raise ConfigError(
            f"{run_dir}: finished with different settings ({have}) than now ({want}); use another output "
            "folder or delete that run"
        )
    return True


def train_variant(cfg: CompareConfig, variant: Variant, run_dir: Path, data_root: Path, progress: bool = True) -> bool:
    """Train (or resume) one variant. Returns True when it reached the budget (and marks it finished)."""
    from ..model_files import load_checkpoint

    exp = cfg.experiment(variant)
    ckpt = run_dir / "checkpoints" / "last.pt"
    resume = ckpt.exists()
    if resume:
        # through config_from_dict, so a checkpoint saved before a setting existed compares with its default
        saved = config_from_dict(load_checkpoint(ckpt)["config"]).to_dict()
        want = exp.to_dict()
        for section in ("model", "loss"):
            if saved.get(section) != want[section]:
                raise ConfigError(f"{run_dir}: its checkpoint was trained with other {section} settings than "
                                  f"variant {variant.name} now has; use another output folder or delete it")
    limit = None if cfg.time_limit_minutes is None else float(cfg.time_limit_minutes) * 60
    from ..training.trainer import Trainer

    # one trainer for every kind: the experiment's train.method says what it trains
    trainer = Trainer(exp, run_dir, resume=resume, progress=progress, data_root=data_root)
    trainer.fit(time_limit=limit)
    done = trainer.step >= cfg.steps
    if done:
        (run_dir / FINISHED).write_text(json.dumps({**_finished_record(cfg, variant), "time": time.time()}) + "\n")
    return done


def run_compare(cfg: CompareConfig, out: str | Path, *, progress: bool = True, train_only: bool = False,
                eval_only: bool = False) -> Path | None:
    """Train all trained variants (skipping finished ones), then evaluate everything. Returns the report path,
    or None when some variant is not finished yet (time limit) and nothing was evaluated."""
    from ..data.builtin import resolve_data_root
    from .baselines import BASELINES, baseline_method, model_method
    from .evaluate import MethodSpec, evaluate

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = cfg.experiment(get_variant("ours")) if cfg.data is None else None
    data_root = Path(cfg.data) if cfg.data is not None else resolve_data_root(base, progress=progress)
    (out / "compare.yaml").write_text(cfg.source.read_text() if cfg.source else "")
    pending = []
    for variant in cfg.variants:
        if not variant.trained or eval_only:
            continue
        run_dir = out / "runs" / variant.name
        if is_finished(run_dir, cfg, variant):
            print(f"{variant.name}: finished, skipped")
            continue
        print(f"{variant.name}: training {cfg.steps} steps ({variant.kind}) -> {run_dir}")
        if not train_variant(cfg, variant, run_dir, data_root, progress):
            pending.append(variant.name)
    if pending:
        print(f"not finished yet (time limit): {', '.join(pending)}; run the same command again to continue")
        return None
    if train_only:
        return None

    from ..data.datasets import find_test_folders

    test_dir = find_test_folders(data_root)[0].parent
    has_kernels = (test_dir / "kernels").is_dir()
    specs = []
    notes = [f"Every trained variant: base '{Path(cfg.base).name}', {cfg.steps} steps, common overrides "
             f"{cfg.overrides or 'none'}."]
    for variant in cfg.variants:
        if variant.trained:
            run_dir = out / "runs" / variant.name
            export = run_dir / "deblur.safetensors"
            if not export.exists():
                print(f"{variant.name}: no exported model in {run_dir}, left out (run without --eval-only first)")
                continue
            specs.append(MethodSpec(variant.name, model_method(export, device="cpu"), variant.title, run_dir))
            notes.append(f"{variant.title}: overrides {list(variant.overrides) or 'none'}. {variant.note}".strip())
        else:
            if BASELINES[variant.name].needs_kernel and not has_kernels:
                print(f"{variant.name}: the test set has no true kernels, left out")
                continue
            specs.append(MethodSpec(variant.name, baseline_method(variant.name), variant.title, None, variant.note))
    ev = cfg.eval
    result = evaluate(specs, data_root, out / "report", ocr=bool(ev.get("ocr", False)), limit=ev.get("limit"),
                      grid_rows=int(ev.get("grid_rows", 6)), feature_distance=bool(ev.get("feature_distance", True)),
                      face=bool(ev.get("face", False)), progress=progress, title=f"udeblur comparison: {cfg.name}",
                      notes=notes)
    return result.report
