"""Typed, versioned workspace settings stored as JSON next to the database."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mlops_desktop.errors import SchemaTooNewError, UsageError

SETTINGS_VERSION = 1


@dataclass
class Settings:
    """Settings of one workspace. Unknown keys are kept (a newer minor version may add them)."""

    version: int = SETTINGS_VERSION
    default_experiment: str = "Default"
    flush_interval_s: float = 0.1
    busy_timeout_ms: int = 30_000
    theme: str = "system"  # system | light | dark
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Settings:
        if not path.exists():
            return cls()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"settings file {path} is unreadable: {exc}",
                             hint="fix or delete it; defaults are used when it is absent") from None
        if not isinstance(raw, dict):
            raise UsageError(f"settings file {path} must hold a JSON object")
        version = raw.get("version", 1)
        if not isinstance(version, int) or version > SETTINGS_VERSION:
            raise SchemaTooNewError(f"settings file {path} has version {version!r}; this MLOps Desktop "
                                    f"understands up to {SETTINGS_VERSION}", hint="upgrade MLOps Desktop")
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        extra = dict(raw.get("extra", {}))
        for key, value in raw.items():
            if key == "extra":
                continue
            if key not in known:
                extra[key] = value
                continue
            default = getattr(cls(), key)
            if default is not None and not isinstance(value, type(default)) and not (
                    isinstance(default, float) and isinstance(value, int)):
                raise UsageError(f"settings file {path}: field {key!r} must be {type(default).__name__}, "
                                 f"got {value!r}")
            kwargs[key] = value
        kwargs["extra"] = extra
        kwargs["version"] = SETTINGS_VERSION
        return cls(**kwargs)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
