"""The production guard on every real service's settings: with ENVIRONMENT=production a service
refuses to start on development defaults (its local database URL, no service secret, signing
keys nowhere), and accepts the same settings once they are given explicitly."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from imgtag_auth.settings import AuthSettings
from imgtag_catalog.settings import CatalogSettings
from imgtag_common.settings import Environment
from imgtag_inference.settings import InferenceSettings
from imgtag_storage.settings import StorageSettings

SECRET = "s" * 40
# What each service must be given explicitly in production.
REQUIRED = {
    AuthSettings: {
        "database_url": "postgresql+asyncpg://auth@db:5432/imgtag_auth",
        "service_secret": SECRET,
        "keys_dir": "/var/lib/imgtag/keys",
    },
    CatalogSettings: {"database_url": "postgresql+asyncpg://catalog@db:5432/imgtag_catalog", "service_secret": SECRET},
    StorageSettings: {"database_url": "postgresql+asyncpg://storage@db:5432/imgtag_storage", "service_secret": SECRET},
    InferenceSettings: {"service_secret": SECRET},
}


@pytest.mark.parametrize("settings_class", list(REQUIRED), ids=lambda c: c.__name__)
def test_development_runs_on_defaults(settings_class) -> None:
    assert settings_class().environment is Environment.DEVELOPMENT


@pytest.mark.parametrize("settings_class", list(REQUIRED), ids=lambda c: c.__name__)
def test_production_refuses_each_development_default(settings_class) -> None:
    required = REQUIRED[settings_class]
    for missing in required:
        given = {k: v for k, v in required.items() if k != missing}
        with pytest.raises(ValidationError, match=missing.split("_")[0]):
            settings_class(environment="production", **given)


@pytest.mark.parametrize("settings_class", list(REQUIRED), ids=lambda c: c.__name__)
def test_production_accepts_explicit_settings(settings_class) -> None:
    settings = settings_class(environment="production", **REQUIRED[settings_class])
    assert settings.environment is Environment.PRODUCTION
    assert settings.insecure_defaults() == []


def test_every_database_service_default_is_refused_in_production() -> None:
    """The guard compares each service's own default, not one URL no service uses."""
    for settings_class in (AuthSettings, CatalogSettings, StorageSettings):
        default = settings_class.model_fields["database_url"].default
        assert "database_url" in settings_class(database_url=default).insecure_defaults()
