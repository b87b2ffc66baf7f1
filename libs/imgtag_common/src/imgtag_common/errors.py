"""The one error hierarchy. Domain code raises these; `to_rpc_status` is the only place they
become gRPC status codes (with a `google.rpc.ErrorInfo` detail the gateway turns into JSON)."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "imgtag.dev"


class ImgTagError(Exception):
    """Base of every expected failure. `reason` is a stable UPPER_SNAKE identifier for clients."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN
    default_reason = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.metadata = dict(metadata or {})


class InvalidArgument(ImgTagError):
    code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class NotFound(ImgTagError):
    code = grpc.StatusCode.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(ImgTagError):
    code = grpc.StatusCode.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(ImgTagError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(ImgTagError):
    """A concurrent change got there first (e.g. an etag that no longer matches); read and retry."""

    code = grpc.StatusCode.ABORTED
    default_reason = "ABORTED"


class Unauthenticated(ImgTagError):
    code = grpc.StatusCode.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(ImgTagError):
    code = grpc.StatusCode.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(ImgTagError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(ImgTagError):
    code = grpc.StatusCode.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class DataLoss(ImgTagError):
    code = grpc.StatusCode.DATA_LOSS
    default_reason = "DATA_LOSS"


class Unimplemented(ImgTagError):
    code = grpc.StatusCode.UNIMPLEMENTED
    default_reason = "NOT_IMPLEMENTED"


def _status_code_value(code: grpc.StatusCode) -> int:
    return code.value[0]


def to_status_proto(error: ImgTagError) -> status_pb2.Status:
    """The google.rpc.Status (code, message, ErrorInfo detail) for a domain error: what a batch
    response carries per item, and what the RPC status carries for a whole call."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=_status_code_value(error.code), message=error.message, details=[detail])


def to_rpc_status(error: ImgTagError) -> grpc.Status:
    """Build the gRPC status for a domain error."""
    return rpc_status.to_status(to_status_proto(error))


def internal_status(message: str = "internal error") -> grpc.Status:
    """The status for a bug: no exception text leaks to clients (it is logged instead)."""
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message))


_BY_CODE: dict[grpc.StatusCode, type[ImgTagError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Aborted,
        Unauthenticated,
        PermissionDenied,
        ResourceExhausted,
        Unavailable,
        DataLoss,
        Unimplemented,
    )
}


def from_rpc_error(error: grpc.aio.AioRpcError) -> ImgTagError:
    """Turn a failed downstream call back into a domain error, keeping its code and reason."""
    reason = None
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is not None:
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    if error.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return Unavailable(f"downstream call timed out: {error.details()}", reason="DOWNSTREAM_TIMEOUT")
    cls = _BY_CODE.get(error.code(), ImgTagError)
    err = cls(error.details() or error.code().name, reason=reason)
    if cls is ImgTagError:
        err.code = grpc.StatusCode.INTERNAL
    return err
