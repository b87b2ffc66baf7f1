"""The import RPCs of CatalogService (ZIP and URL imports as jobs): protobuf in, protobuf out; the
rules live in domain/imports.py. ImportAssets from a storage endpoint's folder is not built yet:
it answers UNIMPLEMENTED with a message saying so."""

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc.aio import ServicerContext

from imgtag.catalog.v1 import assets_pb2, imports_pb2
from imgtag_catalog.domain.imports import (
    MAX_REPORTED_ERRORS,
    ImportItemRecord,
    ImportJobRecord,
    ImportOptions,
    ImportService,
    ImportState,
    ItemOutcome,
)
from imgtag_common.auth import current_principal
from imgtag_common.errors import ERROR_DOMAIN, InvalidArgument, Unimplemented
from imgtag_common.resources import to_timestamp
from imgtag_common.streams import peek_first

ImportJob = imports_pb2.ImportJob
_STATE = {
    ImportState.PENDING: ImportJob.PENDING,
    ImportState.RUNNING: ImportJob.RUNNING,
    ImportState.SUCCEEDED: ImportJob.SUCCEEDED,
    ImportState.FAILED: ImportJob.FAILED,
    ImportState.CANCELLED: ImportJob.CANCELLED,
}
_OUTCOME = {
    ItemOutcome.CREATED: assets_pb2.UploadResult.CREATED,
    ItemOutcome.DUPLICATE: assets_pb2.UploadResult.DUPLICATE,
    ItemOutcome.REJECTED: assets_pb2.UploadResult.REJECTED,
}


def _status(code: int, reason: str, message: str) -> status_pb2.Status:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))
    return status_pb2.Status(code=code, message=message, details=[detail])


def _item_to_proto(item: ImportItemRecord) -> imports_pb2.ImportItem:
    assert item.outcome is not None
    message = imports_pb2.ImportItem(source_item=item.source_item, outcome=_OUTCOME[item.outcome])
    if item.asset_id is not None:
        message.asset = f"assets/{item.asset_id}"
    if item.outcome is ItemOutcome.REJECTED:
        message.error.CopyFrom(_status(item.error_code, item.error_reason, item.error_message))
    return message


def import_job_to_proto(job: ImportJobRecord) -> imports_pb2.ImportJob:
    if "urls" in job.source:
        source = imports_pb2.ImportSource(urls=imports_pb2.UrlImportSource(urls=job.source["urls"]["urls"]))
    else:
        zip_source = job.source.get("zip", {})
        source = imports_pb2.ImportSource(
            zip=imports_pb2.ZipImportSource(
                filename=zip_source.get("filename", ""), size_bytes=zip_source.get("size_bytes", 0)
            )
        )
    message = imports_pb2.ImportJob(
        name=job.name,
        source=source,
        collection=job.options.get("collection", ""),
        tags=job.options.get("tags", []),
        state=_STATE[job.state],
        total_count=job.total_count,
        processed_count=job.processed_count,
        imported_count=job.imported_count,
        skipped_count=job.skipped_count,
        failed_count=job.failed_count,
        items=[_item_to_proto(i) for i in job.items],
        item_errors=[
            imports_pb2.ImportItemError(
                source_item=i.source_item, status=_status(i.error_code, i.error_reason, i.error_message)
            )
            for i in job.items
            if i.outcome is ItemOutcome.REJECTED
        ][:MAX_REPORTED_ERRORS],
        creator=job.creator,
        create_time=to_timestamp(job.create_time),
        start_time=to_timestamp(job.start_time),
        end_time=to_timestamp(job.end_time),
    )
    if job.state is ImportState.FAILED:
        message.error.CopyFrom(_status(job.error_code, job.error_reason, job.error))
    return message


class ImportsApi:
    _imports: ImportService

    async def ImportZip(
        self, request_iterator: AsyncIterator[imports_pb2.ImportZipRequest], context: ServicerContext
    ) -> imports_pb2.ImportJob:
        first, messages = await peek_first(request_iterator)
        if first is None:
            raise InvalidArgument("an import needs at least one message", reason="EMPTY_UPLOAD")
        chunks = (message.content.data async for message in messages)
        job = await self._imports.submit_zip(
            current_principal.get(),
            ImportOptions(
                filename=first.filename,
                collection=first.collection,
                tags=tuple(first.tags),
                skip_analysis=first.skip_analysis,
                allow_duplicates=first.allow_duplicates,
            ),
            chunks,
        )
        return import_job_to_proto(job)

    async def ImportAssets(
        self, request: imports_pb2.ImportAssetsRequest, context: ServicerContext
    ) -> imports_pb2.ImportJob:
        options = ImportOptions(
            collection=request.collection,
            tags=tuple(request.tags),
            skip_analysis=request.skip_analysis,
            allow_duplicates=request.allow_duplicates,
        )
        kind = request.source.WhichOneof("source")
        if kind == "urls":
            job = await self._imports.submit_urls(current_principal.get(), options, list(request.source.urls.urls))
            return import_job_to_proto(job)
        if kind == "storage":
            raise Unimplemented(
                "importing a folder of a storage endpoint is not built yet; import the folder with "
                "`imgtag import PATH` or as a ZIP",
                reason="STORAGE_IMPORT_NOT_BUILT",
            )
        if kind == "zip":
            raise InvalidArgument("upload ZIP archives with ImportZip (POST /v1/importJobs:zip)", reason="BAD_SOURCE")
        raise InvalidArgument("name a source: urls or storage", reason="BAD_SOURCE")

    async def GetImportJob(
        self, request: imports_pb2.GetImportJobRequest, context: ServicerContext
    ) -> imports_pb2.ImportJob:
        return import_job_to_proto(await self._imports.get(current_principal.get(), request.name))

    async def ListImportJobs(
        self, request: imports_pb2.ListImportJobsRequest, context: ServicerContext
    ) -> imports_pb2.ListImportJobsResponse:
        page = await self._imports.list_page(
            current_principal.get(),
            page_size=request.page_size,
            page_token=request.page_token,
            filter_text=request.filter,
        )
        return imports_pb2.ListImportJobsResponse(
            import_jobs=[import_job_to_proto(j) for j in page.jobs], next_page_token=page.next_page_token
        )

    async def CancelImportJob(
        self, request: imports_pb2.CancelImportJobRequest, context: ServicerContext
    ) -> imports_pb2.ImportJob:
        return import_job_to_proto(await self._imports.cancel(current_principal.get(), request.name))
