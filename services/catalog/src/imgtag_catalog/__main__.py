from imgtag_catalog.server import build_server
from imgtag_catalog.settings import CatalogSettings
from imgtag_common.server import run_service

run_service("catalog", CatalogSettings(), build_server)
