from imgtag_auth.server import build_server
from imgtag_auth.settings import AuthSettings
from imgtag_common.server import run_service

run_service("auth", AuthSettings(), build_server)
