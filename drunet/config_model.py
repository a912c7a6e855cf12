"""The ``model:`` section: which network, its channels and classes, and its typed arguments.

``params`` is typed by the model's family — :class:`DRUNetParams` for ``drunet`` and its presets,
:class:`SmpParams` for the smp baseline — so a misspelt argument is an error naming the key
before any run folder exists. ``"drunet"`` is resolved to the default preset here, and only here:
a stored configuration always names the concrete preset, so weights rebuild the same network
after a later release picks another default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from drunet.errors import ConfigError
from drunet.models.presets import DEFAULT_PRESET, PRESETS
from drunet.models.registry import SMP_PREFIX, check_name

# Hard bounds on what a file may declare, checked before anything is allocated: masks hold at most
# uint16 class indices. (Classes inferred from mask pixels have a lower, configurable cap.)
MAX_CLASSES = 65536
MAX_CHANNELS = 1024


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Which params class this is; set from model.name, never written to a file.
    family: str = Field(default="", exclude=True)

    @model_serializer(mode="wrap")
    def _set_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A stored config lists the arguments that were set, not a column of nulls.
        return {k: v for k, v in handler(self).items() if v is not None}


class DRUNetParams(_Params):
    """:class:`~drunet.models.DRUNet` arguments; ``None`` takes the preset's value."""

    family: Literal["drunet"] = Field(default="drunet", exclude=True)
    init_features: int | None = Field(default=None, ge=1, le=1024)
    depth: int | None = Field(default=None, ge=1, le=8)
    blocks_per_stage: int | None = Field(default=None, ge=1, le=16)
    conv_after_block: bool | None = None
    bottleneck_ratio: float | None = Field(default=None, gt=0, le=8)
    se_reduction: int | None = Field(default=None, ge=0, le=1024)
    shortcut: Literal["projection", "zero_pad"] | None = None
    preact: bool | None = None
    norm: Literal["batch", "group", "instance", "none"] | None = None
    act: Literal["relu", "leaky_relu", "silu", "gelu"] | None = None
    channels_last: bool | None = None
    stem_stride: Literal[1, 2] | None = None


class SmpParams(_Params):
    """:class:`~drunet.models.SmpModel` arguments. ``encoder_name`` picks another encoder for
    ``unet_resnet34`` (``smp:ARCH:ENCODER`` names its encoder in the model name)."""

    family: Literal["smp"] = Field(default="smp", exclude=True)
    encoder_name: str | None = Field(default=None, min_length=1, max_length=64)
    encoder_depth: int = Field(default=5, ge=3, le=5)


def family(name: str) -> Literal["drunet", "smp"]:
    return "drunet" if name == "drunet" or name in PRESETS else "smp"


class ModelConfig(BaseModel):
    """Which network to build. ``in_channels`` and ``num_classes`` are inferred from the data
    when left empty; ``num_classes`` counts background (binary = 2, trained with one logit)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = DEFAULT_PRESET
    in_channels: int | None = Field(default=None, ge=1, le=MAX_CHANNELS)
    num_classes: int | None = Field(default=None, ge=2, le=MAX_CLASSES)
    params: DRUNetParams | SmpParams = Field(default_factory=DRUNetParams, discriminator="family")

    @model_validator(mode="before")
    @classmethod
    def _tag_params(cls, data: Any) -> Any:
        # The params class follows the model's name; tag the raw mapping so the discriminated
        # union validates it as that class (and reports its keys under model.params).
        if isinstance(data, dict) and isinstance(data.get("name", DEFAULT_PRESET), str):
            name = data.get("name", DEFAULT_PRESET)
            params = data.get("params")
            if params is None:
                params = {}
            if isinstance(params, dict):
                data = {**data, "params": {**params, "family": family(name)}}
        return data

    @field_validator("name")
    @classmethod
    def _resolve_name(cls, name: str) -> str:
        return check_name(name)  # "drunet" → its preset, the one place it is resolved

    @model_validator(mode="after")
    def _one_encoder_name(self) -> ModelConfig:
        if self.name.startswith(SMP_PREFIX) and getattr(self.params, "encoder_name", None):
            raise ValueError(
                f"model.params.encoder_name: {self.name} already names its encoder; drop the key"
            )
        return self

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
        if self.name in PRESETS:
            return {**PRESETS[self.name], **given}
        if self.name.startswith(SMP_PREFIX):  # the name holds the architecture and encoder
            return given
        return {"encoder_name": "resnet34", **given}


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
