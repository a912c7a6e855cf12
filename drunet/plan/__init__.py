"""Let the data choose the recipe: a dataset fingerprint and a plan with one reason per choice.

``fingerprint_config(config)`` measures the training pairs a config selects
(``fingerprint.py``, ``measure.py``, ``spacing.py``); ``make_plan(fingerprint)`` chooses the
model, patch, batch, oversampling, loss, augmentation and time budget by documented rules
(``rules.py``); ``apply_plan`` sets the plan's choices below the user's values (``apply.py``).
After training, ``select_postprocessing`` keeps each mask clean-up that raises the per-image
validation score (``postprocess.py``).
"""

from drunet.plan.apply import (
    PLAN_FILE,
    apply_plan,
    explicit_keys,
    fingerprint_config,
    fixed_values,
    plan_config,
    save_plan,
)
from drunet.plan.fingerprint import (
    FINGERPRINT_FILE,
    Fingerprint,
    compute_fingerprint,
    load_fingerprint,
    save_fingerprint,
)
from drunet.plan.postprocess import POSTPROCESS_FILE, Selection, select_postprocessing
from drunet.plan.rules import PLAN_KEYS, Choice, Plan, make_plan
from drunet.plan.text import fingerprint_lines, key_lines, plan_lines, selection_lines

__all__ = [
    "FINGERPRINT_FILE",
    "PLAN_FILE",
    "PLAN_KEYS",
    "POSTPROCESS_FILE",
    "Choice",
    "Fingerprint",
    "Plan",
    "Selection",
    "apply_plan",
    "compute_fingerprint",
    "explicit_keys",
    "fingerprint_config",
    "fingerprint_lines",
    "fixed_values",
    "key_lines",
    "load_fingerprint",
    "make_plan",
    "plan_config",
    "plan_lines",
    "save_fingerprint",
    "save_plan",
    "select_postprocessing",
    "selection_lines",
]
