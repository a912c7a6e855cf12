"""A model family: everything drunet knows about one kind of network, in one object.

A family answers some model names, types its arguments (a :class:`Params` subclass), builds a
network, says which part is the encoder (for encoder learning rates and encoder weights), which
convolutions read the image (for adapting stored weights to another channel count) and how a
hand-built network is named in a stored configuration. The registry
(:mod:`drunet.models.registry`) lists the families; nothing outside ``drunet.models`` tells two
families apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from torch import nn


class Params(BaseModel):
    """A family's typed arguments (``model.params``): unknown keys are errors; ``None`` takes the
    named model's own value (a preset's, or the constructor's default)."""

    model_config = ConfigDict(extra="forbid")

    @model_serializer(mode="wrap")
    def _set_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A stored config lists the arguments that were set, not a column of nulls.
        return {k: v for k, v in handler(self).items() if v is not None}


def _given(name: str, given: dict[str, Any]) -> dict[str, Any]:
    return dict(given)


def _no_check(name: str, params: Params) -> None:
    return None


def _same(state: dict[str, Any]) -> dict[str, Any]:
    return state


@dataclass(frozen=True)
class ModelFamily:
    """One kind of network. The callables receive models this family built.

    Attributes:
        tag: the family's name (``"drunet"``, ``"smp"``).
        model_class: the class every model of the family is an instance of.
        params: its typed arguments.
        names: the fixed names it answers, listed in help and errors.
        resolve: a name → the concrete name it stands for (``"drunet"`` → the default preset),
            ``None`` when the family does not answer it; ``ValueError`` for a malformed name of
            its own (``"smp:Unet:nope"``).
        build: ``build(name, in_channels, out_channels, **params)`` → the network.
        describe: a network → ``(concrete name, params)`` that rebuild it (a stored config).
        encoder: a network → its encoder (fine-tuning's learning-rate groups, encoder weights).
        input_convs: a network → ``{state-dict key: F}`` for each conv weight that reads the
            image after ``F`` feature channels (the stem: ``F = 0``).
        pattern: names answered besides ``names``, as shown to users (``"smp:ARCH:ENCODER"``).
        filled: ``(name, params set)`` → every argument (a preset's values under the set ones).
        check_params: ``ValueError`` for params that contradict the name.
        builds_on_meta: building allocates nothing but parameters (no forward pass), so a
            stored configuration can be sized on the meta device before it is trusted.
        pretrained: a network → ``{weights name: (Hugging Face repo, revision)}`` its encoder
            can start from; ``None`` when the family takes no encoder weights.
        upgrade_state: a stored state dict → the same weights under today's key names (weights
            saved by an earlier layout of the network).
    """

    tag: str
    model_class: type[nn.Module]
    params: type[Params]
    names: tuple[str, ...]
    resolve: Callable[[str], str | None]
    build: Callable[..., nn.Module]
    describe: Callable[[nn.Module], tuple[str, dict[str, Any]]]
    encoder: Callable[[nn.Module], nn.Module]
    input_convs: Callable[[nn.Module], dict[str, int]]
    pattern: str = ""
    filled: Callable[[str, dict[str, Any]], dict[str, Any]] = _given
    check_params: Callable[[str, Params], None] = _no_check
    builds_on_meta: bool = True
    pretrained: Callable[[nn.Module], dict[str, tuple[str, str | None]]] | None = None
    upgrade_state: Callable[[dict[str, Any]], dict[str, Any]] = _same

    @property
    def shown_names(self) -> tuple[str, ...]:
        """Its names as help lists them: the fixed ones, then the pattern."""
        return (*self.names, self.pattern) if self.pattern else self.names
