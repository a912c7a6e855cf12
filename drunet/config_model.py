"""The ``model:`` section: which network, its channels and classes, and its typed arguments.

``params`` is typed by the model's family — the registry's family answering ``model.name``
(:mod:`drunet.models.registry`) gives its params class — so a misspelt argument is an error
naming the key before any run folder exists. ``"drunet"`` is resolved to the default preset
here, and only here: a stored configuration always names the concrete preset, so weights rebuild
the same network after a later release picks another default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationInfo,
    field_validator,
)

from drunet.errors import ConfigError
from drunet.models.family import Params
from drunet.models.presets import DEFAULT_PRESET
from drunet.models.registry import check_name, family_for

# Hard bounds on what a file may declare, checked before anything is allocated: masks hold at most
# uint16 class indices. (Classes inferred from mask pixels have a lower, configurable cap.)
MAX_CLASSES = 65536
MAX_CHANNELS = 1024


class ModelConfig(BaseModel):
    """Which network to build. ``in_channels`` and ``num_classes`` are inferred from the data
    when left empty; ``num_classes`` counts background (binary = 2, trained with one logit)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = DEFAULT_PRESET
    in_channels: int | None = Field(default=None, ge=1, le=MAX_CHANNELS)
    num_classes: int | None = Field(default=None, ge=2, le=MAX_CLASSES)
    # Validated as the params class of the family answering ``name`` (validated first).
    params: SerializeAsAny[Params] = Field(default_factory=Params, validate_default=True)

    @field_validator("name")
    @classmethod
    def _resolve_name(cls, name: str) -> str:
        return check_name(name)  # "drunet" → its preset, the one place it is resolved

    @field_validator("params", mode="before")
    @classmethod
    def _family_params(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.data.get("name")
        if name is None:  # the name itself was refused: nothing to type the params by
            return Params()
        family = family_for(name)
        if isinstance(value, Params) and not isinstance(value, family.params):
            value = value.model_dump()  # another family's (or no family's) params: re-check
        params = family.params.model_validate({} if value is None else value)
        family.check_params(name, params)
        return params

    def spec(self) -> ModelSpec:
        """The resolved model: channels and classes known, every argument filled in."""
        if self.in_channels is None or self.num_classes is None:
            raise ConfigError(
                "model.in_channels and model.num_classes are not set (they are inferred from "
                "the data when training; set them to build a model without data)"
            )
        return ModelSpec(self.name, self.in_channels, self.num_classes, self._filled())

    def pinned(self) -> ModelConfig:
        """A copy whose ``params`` state every argument (the preset's values written out), so
        stored weights rebuild the same network even if a preset changes later."""
        return self.model_copy(update={"params": type(self.params)(**self._filled())})

    def _filled(self) -> dict[str, Any]:
        given = self.params.model_dump(exclude_none=True)
        return family_for(self.name).filled(self.name, given)


@dataclass(frozen=True)
class ModelSpec:
    """A model configuration with nothing left to infer (see :meth:`ModelConfig.spec`)."""

    name: str
    in_channels: int
    num_classes: int  # counts background: binary is 2, trained with one logit
    kwargs: dict[str, Any]  # the model class's own arguments

    @property
    def out_channels(self) -> int:
        """Logit channels: one sigmoid channel for binary, else one per class."""
        return 1 if self.num_classes == 2 else self.num_classes
