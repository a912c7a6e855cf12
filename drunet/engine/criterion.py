"""The training loss a configuration asks for (``loss:`` terms, default Dice + CE)."""

from __future__ import annotations

from torch import nn

from drunet.config import ExperimentConfig
from drunet.errors import ConfigError
from drunet.losses import build_loss


def build_criterion(config: ExperimentConfig) -> nn.Module:
    """The configured loss; a mistake the types cannot catch (``class_weights`` of the wrong
    length) is a ``ConfigError`` naming ``loss[i]``. Needs the resolved class count."""
    terms = None if config.loss is None else [term.model_dump() for term in config.loss]
    try:
        return build_loss(
            terms,
            config.model.spec().num_classes,
            ignore_index=config.data.masks.ignore_index,
        )
    except ValueError as err:
        raise ConfigError(f"invalid loss configuration: {err}") from None
