"""``save_pretrained(dir)`` / ``from_pretrained(dir)``: ``model.safetensors`` + ``config.json``.

The folder is self-describing and holds no pickled code: ``config.json`` names the registered
model and the keyword arguments it was built with, so ``from_pretrained`` rebuilds it through
:func:`~drunet.models.create_model` and loads the weights strictly::

    model = create_model("drunet", in_channels=1, out_channels=1, init_features=16)
    model.save_pretrained("my-model")
    same = DRUNet.from_pretrained("my-model")

A class using :class:`PretrainedMixin` records the arguments of its ``__init__`` when it is
built (defaults included), so models need nothing more than the base class. This stores the
network only; a training run's weights (``best.safetensors``) also carry the preprocessing.
"""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from drunet.atomic import atomic_write_bytes, atomic_write_text
from drunet.errors import DrunetError

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
FORMAT = "drunet-pretrained/1"
# Arguments that only matter for a model built without weights: pretrained files are not needed
# when the weights are loaded anyway.
_INIT_ONLY = frozenset({"encoder_weights"})

T = TypeVar("T", bound="PretrainedMixin")


class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained``; see the module docstring."""

    init_kwargs: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self: PretrainedMixin, *args: Any, **init_args: Any) -> None:
            bound = signature.bind(self, *args, **init_args)  # TypeError on unknown arguments
            bound.apply_defaults()
            init(self, *args, **init_args)
            # After __init__ (nn.Module must exist first); a subclass's record replaces its base's.
            values = dict(bound.arguments)
            values.pop(next(iter(signature.parameters)))  # self
            self.init_kwargs = values

        cls.__init__ = recording_init  # type: ignore[method-assign]

    def pretrained_config(self) -> dict[str, Any]:
        """What ``config.json`` holds: the format, the registry name and the arguments."""
        kwargs = {k: v for k, v in self.init_kwargs.items() if k not in _INIT_ONLY}
        try:
            json.dumps(kwargs)
        except TypeError as err:
            raise DrunetError(
                f"{type(self).__name__} was built with arguments that JSON cannot store ({err}); "
                "build it with plain numbers, strings and booleans to save it"
            ) from None
        assert isinstance(self, nn.Module)
        return {"format": FORMAT, "model": registry_name(self, kwargs), "kwargs": kwargs}

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``directory`` (atomically)."""
        from safetensors.torch import save

        assert isinstance(self, nn.Module)
        directory = Path(directory)
        config = self.pretrained_config()
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        atomic_write_bytes(directory / WEIGHTS_NAME, save(state, metadata={"format": FORMAT}))
        atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls: type[T], directory: str | Path) -> T:
        """Rebuild the model saved in ``directory`` and load its weights (eval mode)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from drunet.models.registry import create_model

        directory = Path(directory)
        config = read_pretrained_config(directory)
        try:
            model = create_model(config["model"], **config["kwargs"])
        except ValueError as err:
            raise DrunetError(f"{directory / CONFIG_NAME}: {err}") from None
        if not isinstance(model, cls):
            raise DrunetError(
                f"{directory} holds a {type(model).__name__} ({config['model']!r}), not a "
                f"{cls.__name__}; load it with {type(model).__name__}.from_pretrained"
            )
        weights = directory / WEIGHTS_NAME
        try:
            state = load_file(str(weights))
        except (OSError, SafetensorError) as err:
            raise DrunetError(
                f"cannot read {weights} ({err}); save the model again with save_pretrained"
            ) from None
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            raise DrunetError(f"{weights} does not fit the model in {CONFIG_NAME}: {err}") from None
        return model.eval()


def registry_name(model: nn.Module, kwargs: dict[str, Any]) -> str:
    """The first registered name that rebuilds ``model``'s exact architecture from ``kwargs``.

    Names are tried rather than looked up because a name may stand for a preset (a function
    filling in arguments); ``kwargs`` holds every argument, so any name building the same class
    with the same parameter shapes rebuilds the same network.
    """
    from drunet.models.registry import create_model, model_names  # the registry imports models

    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for name in model_names():
        try:
            rebuilt = create_model(name, **kwargs)
        except (ValueError, TypeError, DrunetError):
            continue  # this name builds another kind of model
        if type(rebuilt) is type(model) and shapes == {
            k: tuple(v.shape) for k, v in rebuilt.state_dict().items()
        }:
            return name
    raise DrunetError(
        f"no name in drunet.models.registry rebuilds this {type(model).__name__}, so "
        "from_pretrained could not load it; register the class there before saving"
    )


def read_pretrained_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DrunetError(
            f"{path} does not exist; pass a folder written by save_pretrained"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise DrunetError(f"cannot read {path}: {err}") from None
    if not isinstance(config, dict) or not {"model", "kwargs"} <= config.keys():
        raise DrunetError(f"{path} is not a drunet pretrained config (needs 'model', 'kwargs')")
    return config
