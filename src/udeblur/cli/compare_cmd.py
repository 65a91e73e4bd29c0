"""`udeblur compare`: train every variant of a compare config at one budget and write one comparison report."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="train the model, ablations and baselines at one budget and compare them",
        description="Trains every trained variant listed in CONFIG (sequentially; finished ones are skipped, "
        "interrupted ones resume), evaluates all variants on the same paired test set and writes "
        "OUT/report/index.html. CONFIG may be a shipped name such as compare_tiny.yaml; the text-domain "
        "comparisons are in experiments/compare/ of the source tree.",
    )
    p.add_argument("config", nargs="?", help="compare YAML (see udeblur.evaluation.compare)")
    p.add_argument("--out", "-o", help="output folder (runs/ and report/); no default: needed with CONFIG")
    p.add_argument("--list", action="store_true", help="list the built-in variants and exit")
    p.add_argument("--train-only", action="store_true", help="train, do not evaluate")
    p.add_argument("--eval-only", action="store_true", help="evaluate what is trained, do not train")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.variants import BUILTIN_VARIANTS

    if args.list:
        for v in BUILTIN_VARIANTS.values():
            print(f"{v.name:18s} {v.kind:10s} {' '.join(v.overrides) or '-'}")
        return 0
    if not args.config or not args.out:
        print("udeblur compare: give CONFIG and --out (or --list)")
        return 2
    from ..evaluation.compare import load_compare_config, run_compare

    cfg = load_compare_config(args.config)
    report = run_compare(cfg, args.out, progress=not args.quiet, train_only=args.train_only,
                         eval_only=args.eval_only)
    if report is not None:
        print((report.parent / "table.md").read_text())
        print(f"report: {report.resolve()}")
    return 0
