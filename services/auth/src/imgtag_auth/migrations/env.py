from imgtag_auth.db.tables import metadata
from imgtag_common.migrations_env import run

run(metadata, version_table="alembic_version_auth")
