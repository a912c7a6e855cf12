"""The ``postprocess:`` section: the mask clean-ups prediction applies after the threshold.

``select: true`` (the default): at the end of training the best weights predict the validation
split and each clean-up is kept only when it raises the per-image validation score
(:mod:`drunet.plan.postprocess`); the chosen values replace the four below in the run's
``config.yaml`` and in the configuration stored with its weights, so ``drunet predict`` and
``Predictor.from_run`` apply them (their flags override each one). ``select: false`` keeps the
values written here, unchecked.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from drunet.cleanup import Cleanup


class PostprocessConfig(BaseModel):
    """The clean-ups of :mod:`drunet.cleanup` and whether training chooses them."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    select: bool = True
    min_size: int = Field(default=0, ge=0)  # objects below this many pixels → background
    fill_holes: bool = False
    largest_component: bool = False  # per class, only the largest object stays
    empty_below: int = Field(default=0, ge=0)  # fewer foreground pixels in all → empty mask

    def cleanup(self) -> Cleanup:
        """The steps as :func:`drunet.cleanup.clean` runs them."""
        return Cleanup(self.min_size, self.fill_holes, self.largest_component, self.empty_below)
