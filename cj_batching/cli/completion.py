"""`cj-batching completion SHELL`: a shell completion script generated from the parser."""

from __future__ import annotations

import argparse
from typing import Any

from cj_batching.cli._terminal import write

__all__ = ["add_parser", "run"]

_SHELLS = ("bash", "zsh", "tcsh")


def add_parser(commands: Any) -> None:
    """Register `completion`."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh, tcsh)",
        description="Print a completion script for SHELL, generated from this command's "
        "own options (shtab). Install it, e.g.: cj-batching completion bash > "
        "~/.local/share/bash-completion/completions/cj-batching, or for zsh: "
        "cj-batching completion zsh > ~/.zfunc/_cj-batching (with ~/.zfunc on fpath).",
    )
    parser.add_argument("shell", choices=_SHELLS, help="the shell to complete in")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the script for the root parser (the one this sub-command belongs to)."""
    import shtab  # only this command needs it

    from cj_batching.cli import build_parser  # the root parser: built when asked for

    parser = build_parser()
    _complete_paths(parser)
    script = shtab.complete(parser, shell=args.shell)
    write(*script.splitlines())
    return 0


def _complete_paths(parser: argparse.ArgumentParser) -> None:
    """Flag files complete as file names everywhere a path is asked for."""
    import shtab

    for action in parser._actions:  # argparse has no public walk of its actions
        if action.dest in ("flags", "path", "old", "new", "against"):
            action.complete = shtab.FILE  # type: ignore[attr-defined]
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                _complete_paths(sub)
