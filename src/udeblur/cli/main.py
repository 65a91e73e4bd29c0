"""`udeblur` entry point. Each command lives in its own module with ``register(subparsers)``.

Command modules import heavy dependencies inside their ``run`` function, so ``udeblur --help`` is instant and a
problem in one command cannot break the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> module (relative to udeblur.cli); listed explicitly, never discovered by scanning
COMMANDS = {
    "train": "train_cmd",
    "deblur": "deblur_cmd",
    "demo": "demo_cmd",
    "synth": "data_cmd",
    "blur": "data_cmd",
    "prepare": "data_cmd",
    "export": "export_cmd",
    "eval": "eval_cmd",
    "compare": "compare_cmd",
    "serve": "serve_cmd",
}


def _expected_errors() -> tuple[type[BaseException], ...]:
    """User-caused errors are printed as one clear line, not a traceback."""
    from ..config import ConfigError
    from ..imageio import ImageReadError

    # OSError: a missing, unwritable or full file system; its message names the file
    errors: list[type[BaseException]] = [ConfigError, ImageReadError, OSError]
    for mod, name in (
        ("udeblur.training.checkpoint", "CheckpointError"),
        ("udeblur.data.datasets", "DatasetError"),
        ("udeblur.training.trainer", "TrainingError"),
    ):
        try:
            errors.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="udeblur",
        description="Unsupervised domain-specific deblurring via disentangled representations (CVPR 2019).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    registered = set()
    for command, module_name in COMMANDS.items():
        if module_name in registered:
            continue
        registered.add(module_name)
        try:
            module = importlib.import_module(f"udeblur.cli.{module_name}")
        except Exception as exc:  # one broken command must not take the others down
            _register_broken(sub, command, module_name, exc)
            continue
        module.register(sub)
    return parser


def _register_broken(sub: argparse._SubParsersAction, command: str, module_name: str, exc: Exception) -> None:
    names = [c for c, m in COMMANDS.items() if m == module_name]

    def run(args: argparse.Namespace) -> int:
        print(f"udeblur {args.command}: unavailable, its module failed to import: {exc!r}", file=sys.stderr)
        return 2

    for name in names:
        p = sub.add_parser(name, help=f"(unavailable: {type(exc).__name__})", add_help=False)
        p.add_argument("rest", nargs=argparse.REMAINDER)
        p.set_defaults(run=run)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("udeblur: interrupted", file=sys.stderr)
        return 130
    except _expected_errors() as exc:
        print(f"udeblur {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
