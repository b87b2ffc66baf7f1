"""Server and client interceptors: request ids, authentication, error mapping, access logs."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from grpc.aio import ServicerContext

from imgtag_common.auth import Principal, current_principal
from imgtag_common.errors import ImgTagError, InvalidArgument, Unimplemented, internal_status, to_rpc_status
from imgtag_common.logging import accepted_request_id, request_id_var
from imgtag_common.service_tokens import SERVICE_TOKEN_HEADER, ServiceTokens

log = logging.getLogger("imgtag.rpc")

REQUEST_ID_HEADER = "x-request-id"
# Health probes and reflection are infrastructure, not traffic worth an access log line.
_QUIET_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


def _metadata_value(metadata: Any, key: str) -> str | None:
    for k, v in metadata or ():
        if k == key:
            return v if isinstance(v, str) else v.decode()
    return None


class Authenticator(Protocol):
    """Resolves the caller of `method` and checks it may call it; raises `ImgTagError`s to refuse."""

    async def authenticate(self, method: str, metadata: Any, peer: str) -> Principal: ...


class ServerGuard(grpc.aio.ServerInterceptor):
    """Wraps every RPC: sets the request id, authenticates, maps domain errors to statuses and
    writes one access log line. Servicers raise `ImgTagError`s and never touch status codes."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(_QUIET_PREFIXES):
            return handler
        return _wrap(handler, details.method, self)

    async def enter(self, method: str, context: ServicerContext) -> None:
        metadata = context.invocation_metadata()
        request_id_var.set(accepted_request_id(_metadata_value(metadata, REQUEST_ID_HEADER)))
        current_principal.set(await self._authenticator.authenticate(method, metadata, context.peer()))

    async def fail(self, method: str, context: ServicerContext, error: BaseException) -> None:
        """Abort the RPC with the status for `error`; always raises."""
        if isinstance(error, NotImplementedError):
            error = Unimplemented(f"{method} is not implemented yet")
        if isinstance(error, ImgTagError):
            log.info(
                "rpc failed",
                extra={
                    "method": method,
                    "code": error.code.name,
                    "reason": error.reason,
                    "error": error.message,
                    **_who(),
                },
            )
            await context.abort_with_status(to_rpc_status(error))
        log.exception("rpc crashed", extra={"method": method}, exc_info=error)
        await context.abort_with_status(internal_status())

    @staticmethod
    def done(method: str, started: float) -> None:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        log.info("rpc ok", extra={"method": method, "duration_ms": duration_ms, **_who()})


def _who() -> dict[str, str]:
    """Who made the call, for the access log: never a credential, only names."""
    principal = current_principal.get()
    who = {"principal": principal.user or "anonymous", "credential": principal.credential.value}
    if principal.service:
        who["via"] = principal.service
    if principal.api_key:
        who["api_key"] = principal.api_key
    return who


def _passes_through(error: BaseException) -> bool:
    # An abort already carries its status; a cancellation means the client went away.
    return isinstance(error, (grpc.aio.AbortError, grpc.aio.UsageError)) or not isinstance(error, Exception)


@dataclass(frozen=True)
class _Undecodable:
    """A request message that did not parse (e.g. a string field that is not UTF-8, which the
    gateway passes on from a query string): the handler turns it into INVALID_ARGUMENT, where
    grpc itself would answer INTERNAL."""

    error: Exception


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:
            return _Undecodable(error)

    return parse


def _decoded(message: Any) -> Any:
    if isinstance(message, _Undecodable):
        raise InvalidArgument(
            "the request is not valid (text fields must be UTF-8)", reason="MALFORMED_REQUEST"
        ) from message.error
    return message


async def _decoded_stream(messages: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for message in messages:
        yield _decoded(message)


def _wrap(handler: grpc.RpcMethodHandler, method: str, guard: ServerGuard) -> grpc.RpcMethodHandler:
    serializers = {
        "request_deserializer": _tolerant(handler.request_deserializer),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary or handler.stream_unary:
        inner_unary = handler.unary_unary or handler.stream_unary
        streaming_request = handler.stream_unary is not None

        async def unary_response(request: Any, context: ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                await guard.enter(method, context)  # inside: a refused credential is mapped too
                request = _decoded_stream(request) if streaming_request else _decoded(request)
                response = await inner_unary(request, context)
            except BaseException as error:
                if _passes_through(error):
                    raise
                await guard.fail(method, context, error)
            guard.done(method, started)
            return response

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        return factory(unary_response, **serializers)

    inner_stream = handler.unary_stream or handler.stream_stream
    streaming = handler.stream_stream is not None

    async def stream_response(request: Any, context: ServicerContext) -> AsyncIterator[Any]:
        started = time.perf_counter()
        try:
            await guard.enter(method, context)
            request = _decoded_stream(request) if streaming else _decoded(request)
            async for item in inner_stream(request, context):
                yield item
        except BaseException as error:
            if _passes_through(error):
                raise
            await guard.fail(method, context, error)
        guard.done(method, started)

    factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
    return factory(stream_response, **serializers)


class _OutboundMetadata:
    """Adds the current request id, a service credential carrying the current principal, and a
    default deadline to every outbound call."""

    def __init__(self, default_timeout_s: float, tokens: ServiceTokens) -> None:
        self._default_timeout_s = default_timeout_s
        self._tokens = tokens

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        request_id = request_id_var.get()
        if request_id and REQUEST_ID_HEADER not in metadata:
            metadata.add(REQUEST_ID_HEADER, request_id)
        metadata[SERVICE_TOKEN_HEADER] = self._tokens.mint(current_principal.get())
        timeout = details.timeout if details.timeout is not None else self._default_timeout_s
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=timeout,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )


class OutboundUnaryUnary(_OutboundMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation, details, request):  # type: ignore[override]
        return await continuation(self._details(details), request)


class OutboundUnaryStream(_OutboundMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation, details, request):  # type: ignore[override]
        return await continuation(self._details(details), request)


class OutboundStreamUnary(_OutboundMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[override]
        return await continuation(self._details(details), request_iterator)


class OutboundStreamStream(_OutboundMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation, details, request_iterator):  # type: ignore[override]
        return await continuation(self._details(details), request_iterator)
