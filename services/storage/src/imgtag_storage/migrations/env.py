from imgtag_common.migrations_env import run
from imgtag_storage.db.tables import metadata

run(metadata, version_table="alembic_version_storage")
