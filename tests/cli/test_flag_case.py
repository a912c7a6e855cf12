"""One case rule for every flag that takes one of a fixed set of words: any case is accepted
(``--device CPU``, ``--precision FP32``, ``--backend ONNXRUNTIME``, ``--fold ALL``).

Found by introspecting the Typer app, so a new flag is covered: a text flag either reads its
word through :func:`drunet.cli.device.any_case` (the command then checks the word and names the
choices in one line) or is listed below as free text (names, paths, patterns); a new text flag
fails here until someone decides which it is. A flag annotated with a ``Literal`` (or an Enum)
must be declared ``case_sensitive=False``.
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Literal, Union, get_args, get_origin

import pytest
import torch
import typer.main

from drunet.cli.device import any_case
from drunet.cli.main import app
from drunet.device import resolve_device

# The words flags take today, one upper-case example each (a new one joins by using any_case).
WORDS = {
    "--device": "CPU",
    "--precision": "FP32",
    "--backend": "ONNXRUNTIME",
    "--format": "PT2",
    "--split": "VAL",
    "--fold": "ALL",
}
# Text flags that are not words from a fixed set: case matters or means nothing.
FREE_TEXT = {
    "--model",  # run folders, weights files, or model names (smp:ARCH:ENCODER is case-sensitive)
    "--models",
    "--name",
    "--init-from",
    "--set",
    "--shard",
    "--stack",
    "inputs",
    "run",
    "--classes",
    # drunet push: Hub repository ids, licence and dataset ids, branches, a commit message.
    "repo",
    "--license",
    "--dataset",
    "--revision",
    "--message",
    "--author",  # export --format bioimageio: a person's name
}

COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def _bare(annotation: object) -> object:
    """``X | None`` → ``X``; ``list[X]`` → ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else annotation
    if get_origin(annotation) in (list, tuple):
        annotation = get_args(annotation)[0]
    return annotation


def _choices(annotation: object) -> list[str] | None:
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    return None


def _params() -> list[tuple[str, object]]:
    return [(name, param) for name, command in COMMANDS.items() for param in command.params]


def _required_arguments(command: object) -> list[str]:
    return [
        "x"
        for param in command.params  # type: ignore[attr-defined]
        if param.param_type_name == "argument" and param.required
    ]


@pytest.mark.parametrize(
    ("name", "param"), _params(), ids=[f"{n}:{p.opts[0]}" for n, p in _params()]
)
def test_every_choice_flag_takes_any_case(name: str, param: typing.Any) -> None:
    annotation = _bare(param.type_descriptor.annotation)
    choices = _choices(annotation)
    flag = param.opts[0]
    command = COMMANDS[name]
    if choices is not None:
        assert param.type_descriptor.parameter_info.case_sensitive is False, flag
        for choice in choices:
            args = [*_required_arguments(command), flag, choice.upper()]
            context = command.make_context(name, args)
            assert context.params[param.name] == choice, (flag, choice)
    elif annotation is str and flag not in FREE_TEXT:
        assert flag in WORDS, f"{name} {flag}: a word from a fixed set (any_case), or free text?"
        assert param.type_descriptor.parameter_info.callback is any_case, (name, flag)
        args = [*_required_arguments(command), flag, WORDS[flag]]
        context = command.make_context(name, args)
        assert context.params[param.name] == WORDS[flag].lower(), (name, flag)


@pytest.mark.parametrize("word", ["CPU", "Cpu", " cpu ", "AUTO"])
def test_device_words_take_any_case(word: str) -> None:
    # Every command's --device goes through resolve_device (cli/device.py).
    expected = resolve_device("auto") if word == "AUTO" else torch.device("cpu")
    assert resolve_device(word) == expected
