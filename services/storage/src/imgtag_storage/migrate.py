"""`python -m imgtag_storage.migrate`: apply the storage database's migrations and exit (the
deployment's migration Job), or with `--wait SECONDS` wait until they are applied (the
services' init containers, which then start with IMGTAG_STORAGE_MIGRATE_ON_START=false)."""

from imgtag_common.db import run_migrations
from imgtag_storage.server import MIGRATIONS
from imgtag_storage.settings import StorageSettings

if __name__ == "__main__":
    run_migrations("storage", StorageSettings(), MIGRATIONS)
