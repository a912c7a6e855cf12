"""Errors a user can fix: the CLI prints their message (no traceback unless ``--debug``)."""

from __future__ import annotations


class DrunetError(Exception):
    """A mistake in the user's input — a file, a folder, a flag or a config key.

    The message names what is wrong and how to fix it; the CLI shows it and exits non-zero.
    """


class DataError(DrunetError):
    """A dataset file or folder that cannot be used (missing, unreadable, inconsistent)."""


class ConfigError(DrunetError):
    """A configuration key or value that is unknown or invalid."""


class OptionError(ConfigError, ValueError):
    r"""An invalid option value passed to a library class or function (``PredictOptions``,
    ``PostprocessOptions``, …): a user error for the CLI, and a ``ValueError`` for Python
    callers, as bad arguments are. Any other ``ValueError`` from drunet is a bug."""


class OutputError(DrunetError):
    """An output would replace a file drunet did not write (see :mod:`drunet.outputs`)."""
