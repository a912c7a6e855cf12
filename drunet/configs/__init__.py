"""Experiment files shipped with drunet: ``--config isbi2012`` reads ``isbi2012.yaml`` here.

Each file states only what differs from the defaults of :class:`drunet.config.ExperimentConfig`
(``default.yaml`` states nothing).
"""

from __future__ import annotations

from pathlib import Path

from drunet.errors import ConfigError

__all__ = ["CONFIG_DIR", "bundled_configs", "find_config"]

CONFIG_DIR = Path(__file__).resolve().parent


def bundled_configs() -> list[str]:
    """The names of the bundled experiment files, e.g. ``["baseline", "default", "isbi2012"]``."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def find_config(name_or_path: str | Path) -> Path:
    """An existing path as it is; else a bundled name (``"isbi2012"`` or ``"isbi2012.yaml"``).

    Raises ``ConfigError`` naming the bundled configs when it is neither.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.parent == Path(".") and path.suffix in ("", ".yaml"):
        bundled = CONFIG_DIR / f"{path.stem}.yaml"
        if bundled.is_file():
            return bundled
    if path.exists():  # a folder or a device: load_config says why it cannot be read
        return path
    raise ConfigError(
        f"cannot read config {name_or_path}: no such file, nor a bundled config; give a YAML "
        f"file or one of: {', '.join(bundled_configs())}"
    )
