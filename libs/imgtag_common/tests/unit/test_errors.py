import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from imgtag_common.errors import ERROR_DOMAIN, NotFound, internal_status, to_rpc_status


def _status_proto(status: grpc.Status):
    class _Call:
        def code(self):
            return status.code

        def details(self):
            return status.details

        def trailing_metadata(self):
            return status.trailing_metadata

    return rpc_status.from_call(_Call())


def test_domain_error_becomes_status_with_error_info() -> None:
    status = to_rpc_status(
        NotFound("assets/x does not exist", reason="ASSET_NOT_FOUND", metadata={"asset": "assets/x"})
    )
    assert status.code is grpc.StatusCode.NOT_FOUND
    assert status.details == "assets/x does not exist"
    proto = _status_proto(status)
    info = error_details_pb2.ErrorInfo()
    assert proto.details[0].Unpack(info)
    assert (info.reason, info.domain, dict(info.metadata)) == ("ASSET_NOT_FOUND", ERROR_DOMAIN, {"asset": "assets/x"})


def test_default_reason_is_the_code_name() -> None:
    assert NotFound("gone").reason == "NOT_FOUND"


def test_internal_status_carries_no_details() -> None:
    status = internal_status()
    assert status.code is grpc.StatusCode.INTERNAL
    assert _status_proto(status).details == []
