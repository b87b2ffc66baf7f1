from imgtag_common.migrations_env import run
from imgtag_inference.db.tables import metadata

run(metadata, version_table="alembic_version_inference")
