from imgtag_common.server import run_service
from imgtag_storage.server import build_server
from imgtag_storage.settings import StorageSettings

run_service("storage", StorageSettings(), build_server)
