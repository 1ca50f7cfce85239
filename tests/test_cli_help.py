"""Every command's --help states every default (issue 19: "--help shows every default")."""

from __future__ import annotations

import argparse

import pytest

from snnplug.app import cli, compare_cli, run


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    root = cli.build_parser()
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    found = {name: p for name, p in sub.choices.items() if name not in cli._PASSTHROUGH}
    found["run"] = run._parser()
    found["compare"] = compare_cli.build_parser()
    return found


@pytest.mark.parametrize("command", ["plugins", "train", "evaluate", "convert", "run", "compare"])
def test_help_names_every_default(command):
    parser = _subparsers()[command]
    text = " ".join(parser.format_help().split()).split(" options: ", 1)[1]  # past the usage line
    for action in parser._actions:
        if not action.option_strings or action.default in (None, False, argparse.SUPPRESS) or action.required:
            continue
        flag = action.option_strings[-1]
        after = text.split(flag + " ", 1)[1] if flag + " " in text else ""
        # the option's own entry (up to the next option) says its default
        entry = after.split(" --", 1)[0]
        assert "default" in entry, f"snnplug {command} --help: {flag} does not show its default {action.default!r}"


def test_options_defaulting_to_none_say_what_none_means():
    text = " ".join(_subparsers()["train"].format_help().split())
    assert "--T T time steps (default: the strategy's)" in text
    assert "--out OUT checkpoint folder (default: runs/<strategy>)" in text
