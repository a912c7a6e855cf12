"""The ``postprocess:`` section: the mask clean-ups prediction applies after the threshold.

``select: true`` (the default): at the end of training the best weights predict the validation
split and each clean-up is kept only when it raises the per-image validation score
(:mod:`drunet.plan.postprocess`); the chosen values replace the four below in the run's
``config.yaml`` and in the configuration stored with its weights, so ``drunet predict`` and
``Predictor.from_run`` apply them (their flags override each one). ``select: false`` keeps the
values written here, unchecked; writing a step's value without ``select`` (``--set
postprocess.min_size=20``) means ``select: false``: the value you wrote is the one used.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from drunet.cleanup import Cleanup


class PostprocessConfig(BaseModel):
    """The clean-ups of :mod:`drunet.cleanup` and whether training chooses them."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    select: bool = True
    min_size: int = Field(default=0, ge=0)  # objects below this many pixels → background
    fill_holes: bool = False
    largest_component: bool = False  # per class, only the largest object stays
    empty_below: int = Field(default=0, ge=0)  # fewer foreground pixels in all → empty mask

    @model_validator(mode="before")
    @classmethod
    def _steps_written_by_hand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "select" not in data and set(data) & set(_STEPS):
            return {**data, "select": False}
        return data

    def cleanup(self) -> Cleanup:
        """The steps as :func:`drunet.cleanup.clean` runs them."""
        return Cleanup(self.min_size, self.fill_holes, self.largest_component, self.empty_below)


_STEPS = ("min_size", "fill_holes", "largest_component", "empty_below")
