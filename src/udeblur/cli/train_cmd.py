"""`udeblur train`: train a model from a preset or YAML config, or resume a run."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a deblurring model on unpaired sharp/blurred folders",
        description="Train on DATA_ROOT/train/{sharp,blurred} (or sharp/blurred, trainA/trainB). Without --data "
        "the built-in text-document domain is generated and used. Several processes/GPUs: "
        "torchrun --nproc_per_node N -m udeblur.cli.main train ... (train.batch_size is the global batch).",
    )
    from ..config import PRESETS

    p.add_argument("--config", "-c", default=None,
                   help=f"preset ({', '.join(PRESETS)}) or YAML file [small; with --resume: the run's own]")
    p.add_argument("--data", default=None, help="data root (overrides data.root) [the built-in text domain]")
    p.add_argument("--blurred", default=None, metavar="DIR",
                   help="your own blurred photos, no pairs needed: they replace the blurred training set (with "
                        "--init-from bundled: adapt the bundled model to your camera's blur) [none]")
    p.add_argument("--out", "-o", required=True, help="run folder: checkpoints, logs, samples, export")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--steps", type=int, default=None,
                   help="total training steps (overrides train.total_steps) [the preset's]")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from these weights (fine-tuning): an exported .safetensors or a checkpoint .pt with "
                        "the same model settings; 'bundled' for the bundled text model [none]")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N [the config's train.device: auto]")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("set", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. loss.perceptual=0 [none]")
    p.set_defaults(run=run)


def build_config(args: argparse.Namespace):
    from pathlib import Path

    from ..config import apply_overrides, load_config, replace
    from ..model_files import load_checkpoint
    from ..training.trainer import CHECKPOINT_NAME

    ckpt = Path(args.out) / CHECKPOINT_NAME
    if args.resume and args.config is None and ckpt.exists():
        # continue with the run's own config; only explicit options change it
        cfg = apply_overrides(load_checkpoint(ckpt, require=("config",))["config"], list(args.set))
    else:
        cfg = load_config(args.config or "small", list(args.set))
    # typed values, not key=value text: a path like "/data/set #2" must not go through YAML parsing
    typed: dict[str, dict] = {}
    if args.data:
        typed.setdefault("data", {})["root"] = str(Path(args.data).expanduser())
    if getattr(args, "blurred", None):
        typed.setdefault("data", {})["blurred"] = str(Path(args.blurred).expanduser().resolve())
    if args.steps:
        typed.setdefault("train", {})["total_steps"] = args.steps
    if args.device:
        typed.setdefault("train", {})["device"] = args.device
    if getattr(args, "init_from", None):
        # "bundled" stays a name: the method resolves it, as it does in a YAML config
        typed.setdefault("train", {})["init_from"] = str(Path(args.init_from).expanduser())
    return replace(cfg, **typed) if typed else cfg


def _announce_expected_time(trainer, total: int, measure: int = 3) -> None:
    """Say what the run will take: the steps to go, then, once the first steps are timed (the very first one
    includes warm-up, so it is left out), the expected time on this machine."""
    import time

    from tqdm.auto import tqdm

    left = total - trainer.step
    print(f"training '{trainer.cfg.name}' for {left} steps (batch {trainer.cfg.train.batch_size}) on "
          f"{trainer.device}; the expected time follows after {measure + 1} steps")
    step_fn, times = trainer.train_step, []

    def timed(batch):
        start = time.perf_counter()
        logs = step_fn(batch)
        times.append(time.perf_counter() - start)
        if len(times) == measure + 1 and left > measure + 1:
            per = sum(times[1:]) / measure
            seconds = per * (left - len(times))
            tqdm.write(f"expected time: {_duration(seconds)} more ({per:.2f} s/step over steps "
                       f"{trainer.step - measure + 1}-{trainer.step}; Ctrl-C stops and saves, --resume continues)")
        return logs

    trainer.train_step = timed  # this run only; the Trainer's loop is left as it is


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def run(args: argparse.Namespace) -> int:
    from ..training import distributed
    from ..training.trainer import EXPORT_NAME, Trainer

    cfg = build_config(args)
    problem = _check_out(args)  # after the config: a bad override leaves no empty run folder behind
    if problem:
        print(f"udeblur train: error: {problem}", file=sys.stderr)
        return 2
    # Under torchrun (RANK/WORLD_SIZE set) the Trainer joins the process group; rank 0 alone writes and prints.
    try:
        trainer = Trainer(cfg, args.out, resume=args.resume, progress=not args.quiet)
        if trainer.dist.is_main:
            total = trainer.cfg.train.total_steps
            if args.resume and trainer.step:
                print(f"resuming {trainer.run_dir} from step {trainer.step} of {total}")
            _announce_expected_time(trainer, total)
        path = trainer.fit()
        if trainer.dist.is_main:
            print(f"checkpoint: {path}")
            print(f"deblurring model: {trainer.run_dir / EXPORT_NAME}")
    finally:
        distributed.cleanup()
    if trainer.interrupted:  # saved and stopped early: scripts must not take it for a finished run
        print(f"udeblur train: interrupted at step {trainer.step}; continue with --resume", file=sys.stderr)
        return 130
    return 0


def _check_out(args: argparse.Namespace) -> str | None:
    """Why the run folder cannot be used, before anything is built or trained; None when it can."""
    import os
    from pathlib import Path

    from ..training.trainer import CHECKPOINT_NAME

    out = Path(args.out)
    if args.resume and not (out / CHECKPOINT_NAME).exists():
        return (f"--resume: {out} holds no checkpoint ({out / CHECKPOINT_NAME}); leave out --resume to start a new "
                "run there")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"--out {out}: cannot create the run folder ({exc.strerror or exc}); choose a writable folder"
    if not out.is_dir() or not os.access(out, os.W_OK | os.X_OK):
        return f"--out {out}: not a writable folder; choose a writable folder"
    return None
