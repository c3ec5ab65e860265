"""Asking the person at the terminal to confirm; without a terminal, only `--yes` confirms."""

import sys

from django.core.management.base import OutputWrapper

from backup.errors import Refused


def refuse_without_terminal(action: str) -> None:
    if not sys.stdin.isatty():
        raise Refused(f"Not confirmed: run with --yes to {action} without a terminal.")


def typed_answer(stdout: OutputWrapper, prompt: str) -> str:
    """What the person typed after `prompt` ("" at the end of input)."""
    stdout.write(prompt, ending="")
    stdout.flush()
    return sys.stdin.readline().strip()
