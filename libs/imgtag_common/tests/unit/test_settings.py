import pytest
from pydantic import ValidationError

from imgtag_common.settings import DatabaseSettings, Environment


def test_development_accepts_the_local_database_default() -> None:
    assert DatabaseSettings().environment is Environment.DEVELOPMENT


def test_production_refuses_development_defaults() -> None:
    with pytest.raises(ValidationError, match="database_url"):
        DatabaseSettings(environment=Environment.PRODUCTION)


def test_production_accepts_an_explicit_database() -> None:
    settings = DatabaseSettings(environment="production", database_url="postgresql+asyncpg://app@db:5432/imgtag")
    assert settings.environment is Environment.PRODUCTION
