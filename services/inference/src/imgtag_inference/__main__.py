from imgtag_common.server import run_service
from imgtag_inference.server import build_server
from imgtag_inference.settings import InferenceSettings

run_service("inference", InferenceSettings(), build_server)
