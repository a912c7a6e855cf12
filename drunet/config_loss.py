"""The ``loss:`` section: a list of weighted terms, each typed by its ``name``.

``[{name: dice, weight: 1}, {name: focal, gamma: 3}]`` validates into :class:`DiceTerm` and
:class:`FocalTerm`; an unknown name or a key a term does not take is an error naming it
(``loss.1.focal.gama``). ``ignore_index`` and the loss mode are not set here: they come from
``data.masks`` and the class count, once for the whole loss.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Term(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    # One weight per class (binary: background and foreground; multilabel: one per channel).
    class_weights: list[Annotated[float, Field(allow_inf_nan=False)]] | None = None


class DiceTerm(_Term):
    """Soft Dice (:class:`~drunet.losses.SoftDiceLoss`)."""

    name: Literal["dice"]
    smooth: float = Field(default=0.0, ge=0, allow_inf_nan=False)


class CETerm(_Term):
    """Cross-entropy, or BCE for one logit (:class:`~drunet.losses.CELoss`)."""

    name: Literal["ce", "bce"]


class FocalTerm(_Term):
    """Focal loss (:class:`~drunet.losses.FocalLoss`)."""

    name: Literal["focal"]
    gamma: float = Field(default=2.0, ge=0, allow_inf_nan=False)
    alpha: float | None = Field(default=None, ge=0, le=1)


class TverskyTerm(_Term):
    """Tversky index loss (:class:`~drunet.losses.TverskyLoss`)."""

    name: Literal["tversky"]
    alpha: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    beta: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    smooth: float = Field(default=0.0, ge=0, allow_inf_nan=False)


LossTerm = Annotated[DiceTerm | CETerm | FocalTerm | TverskyTerm, Field(discriminator="name")]
