"""Shared helpers for the deployment checks: settings names the manifests may pass."""

from __future__ import annotations

import re

from imgtag_auth.settings import AuthSettings
from imgtag_catalog.settings import CatalogSettings
from imgtag_inference.settings import InferenceSettings
from imgtag_storage.settings import StorageSettings

SETTINGS = {
    "AUTH": AuthSettings,
    "CATALOG": CatalogSettings,
    "STORAGE": StorageSettings,
    "INFERENCE": InferenceSettings,
}


def unknown_settings(env_names: list[str]) -> list[str]:
    """IMGTAG_<SERVICE>_* names that no service's settings class reads (a typo is silently
    ignored by pydantic-settings, so it is caught here)."""
    unknown = []
    for name in env_names:
        match = re.fullmatch(r"IMGTAG_([A-Z]+)_(\w+)", name)
        if not match or match.group(1) not in SETTINGS:
            continue
        service, field = match.group(1), match.group(2).lower()
        if field not in SETTINGS[service].model_fields:
            unknown.append(name)
    return unknown
