"""Every command and option of `udeblur` explains itself in --help and shows its default."""

from __future__ import annotations

import argparse

import pytest

from udeblur.cli.main import build_parser
from udeblur.config import PRESETS


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _one_line_helps() -> dict[str, str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a.help for a in sub._choices_actions}


COMMANDS = sorted(_subparsers())


def _shows(default: object, text: str) -> bool:
    shown = {str(default)}
    if isinstance(default, float):
        shown.add(f"{default:g}")
    return any(s in text for s in shown)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_and_option_has_help_and_shows_its_default(command):
    p = _subparsers()[command]
    assert _one_line_helps().get(command), f"`udeblur --help` has no line for {command}"
    assert p.description and len(p.description) > 40, f"`udeblur {command} --help` has no description"
    missing, no_default = [], []
    for action in p._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        if not (action.help or "").strip():
            missing.append(name)
            continue
        text = p.formatter_class(prog=p.prog)._expand_help(action)
        if not (action.default is None or action.default is False or action.default == argparse.SUPPRESS
                or action.default == []):
            if not _shows(action.default, text):
                no_default.append(f"{name} (default {action.default!r}): {text}")
        elif action.option_strings and action.nargs != 0 and not action.required:
            # no value given means something (a preset, the bundled model, all images): the help must say what
            if "default" not in text and "[" not in text:
                no_default.append(f"{name}: {text}")
    assert not missing, f"udeblur {command}: options without help: {missing}"
    assert not no_default, f"udeblur {command}: options whose help does not show the default: {no_default}"


def test_the_formatter_adds_defaults_to_the_printed_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deblur", "--help"])
    out = capsys.readouterr().out
    assert "(default: 64)" in out.replace("\n", " ").replace("  ", " ") or "[64]" in out  # --overlap


def test_train_help_lists_every_preset(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for preset in PRESETS:
        assert preset in out, f"`udeblur train --help` does not list the {preset} preset"


@pytest.mark.parametrize("command", ["deblur", "serve", "demo"])
def test_commands_that_use_the_bundled_model_say_what_it_does_not_do(command, capsys):
    from udeblur.inference.pretrained import BUNDLED, DEFAULT

    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert " ".join(BUNDLED[DEFAULT].limits.split()) in out
