"""`python -m imgtag_catalog.migrate`: apply the catalog database's migrations and exit (the
deployment's migration Job), or with `--wait SECONDS` wait until they are applied (the
services' init containers, which then start with IMGTAG_CATALOG_MIGRATE_ON_START=false)."""

from imgtag_catalog.server import MIGRATIONS
from imgtag_catalog.settings import CatalogSettings
from imgtag_common.db import run_migrations

if __name__ == "__main__":
    run_migrations("catalog", CatalogSettings(), MIGRATIONS)
