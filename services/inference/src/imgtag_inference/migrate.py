"""`python -m imgtag_inference.migrate`: apply the inference database's migrations (the vision-
language providers) and exit, or with `--wait SECONDS` wait until they are applied; as the other
services' entry points. Only for deployments that give the inference service a database."""

from imgtag_common.db import run_migrations
from imgtag_inference.settings import InferenceSettings
from imgtag_inference.vision_wiring import MIGRATIONS

if __name__ == "__main__":
    run_migrations("inference", InferenceSettings(), MIGRATIONS)
