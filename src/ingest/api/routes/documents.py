"""/api/v1/documents: uploads, listing, one document, its chunks, deletion."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile
from pydantic import BaseModel

from ingest.api.problems import ApiProblem
from ingest.api.security import Editor, Viewer
from ingest.api.services import Services, get_services
from ingest.errors import FileTooLarge
from ingest.ingestion import actions
from ingest.ingestion.submit import sanitize_filename, stage_stream
from ingest.jobs.views import iso, job_view
from ingest.pipeline.parsers.sniff import check_upload
from ingest.store import DocumentRecord, new_job_id
from ingest.vocabulary import MAX_PRIORITY, MIN_PRIORITY, DocumentStatus

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
ServicesDep = Annotated[Services, Depends(get_services)]


class QueuedUpload(BaseModel):
    job_id: str
    document_id: str
    filename: str
    status: str


class UploadAccepted(BaseModel):
    jobs: list[QueuedUpload]


class DocumentOut(BaseModel):
    document_id: str
    collection: str
    source: str
    status: str
    error: str | None
    content_hash: str | None
    size_bytes: int | None
    chunk_count: int
    metadata: dict[str, Any]
    created_at: str | None
    updated_at: str | None
    last_job: dict[str, Any] | None = None


class DocumentPage(BaseModel):
    documents: list[DocumentOut]
    total: int
    limit: int
    offset: int


class ChunkOut(BaseModel):
    chunk_id: str
    ordinal: int
    text: str
    token_count: int
    page: int | None
    heading: str | None


class ChunkPage(BaseModel):
    document_id: str
    chunks: list[ChunkOut]


def document_out(doc: DocumentRecord, last_job: dict[str, Any] | None = None) -> DocumentOut:
    return DocumentOut(
        document_id=doc.id,
        collection=doc.collection,
        source=doc.source_uri,
        status=doc.status,
        error=doc.error,
        content_hash=doc.content_hash,
        size_bytes=doc.size_bytes,
        chunk_count=doc.chunk_count,
        metadata=doc.metadata,
        created_at=iso(doc.created_at),
        updated_at=iso(doc.updated_at),
        last_job=last_job,
    )


def _parse_metadata(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ApiProblem(
            422,
            "validation-error",
            "Request validation failed",
            f"metadata: not valid JSON: {exc}",
            errors=[{"field": "metadata", "location": "body", "message": "not valid JSON"}],
        ) from None
    if not isinstance(value, dict):
        raise ApiProblem(
            422,
            "validation-error",
            "Request validation failed",
            "metadata: must be a JSON object",
            errors=[{"field": "metadata", "location": "body", "message": "must be a JSON object"}],
        )
    return value


def ensure_capacity(services: Services) -> None:
    actions.ensure_capacity(services.ctx.store, services.ctx.settings)


@router.post("", status_code=202, response_model=UploadAccepted, summary="Upload documents")
def upload_documents(
    services: ServicesDep,
    principal: Editor,
    request: Request,
    files: Annotated[list[UploadFile], File(description="One or more files")],
    collection: Annotated[str, Form(min_length=1, max_length=200)] = "default",
    metadata: Annotated[str | None, Form(description="A JSON object")] = None,
    priority: Annotated[
        int,
        Form(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="Higher runs first (default 0)"),
    ] = 0,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> UploadAccepted:
    """Stage each file (fsync'd) and queue its ingestion job in the same commit."""
    settings = services.ctx.settings
    if len(files) > settings.max_files_per_upload:
        raise ApiProblem(
            413,
            "too-many-files",
            "Too many files",
            f"at most {settings.max_files_per_upload} files per request",
        )
    meta = _parse_metadata(metadata)
    ensure_capacity(services)
    accepted = []
    for index, upload in enumerate(files):
        filename = sanitize_filename(upload.filename or f"upload-{index}")
        head = upload.file.read(8192)
        upload.file.seek(0)
        check_upload(filename, head)
        job_id = new_job_id()
        try:
            staged = stage_stream(
                upload.file,
                settings.incoming_dir,
                job_id,
                filename,
                max_bytes=settings.max_upload_bytes,
            )
        except FileTooLarge as exc:
            raise ApiProblem(413, "payload-too-large", "Payload too large", str(exc)) from None
        job = services.ctx.submitter.submit_staged(
            staged,
            job_id=job_id,
            source_uri=f"upload://{collection}/{filename}",
            filename=filename,
            collection=collection,
            metadata=meta,
            idempotency_key=f"{idempotency_key}:{index}" if idempotency_key else None,
            priority=priority,
        )
        accepted.append(
            QueuedUpload(
                job_id=job.id,
                document_id=job.document_id or "",
                filename=filename,
                status=job.status,
            )
        )
    request.state.audit_target = ",".join(a.document_id for a in accepted)
    return UploadAccepted(jobs=accepted)


@router.get("", response_model=DocumentPage, summary="List documents")
def list_documents(
    services: ServicesDep,
    principal: Viewer,
    collection: Annotated[str | None, Query(max_length=200)] = None,
    status: Annotated[str | None, Query(pattern="^(queued|ready|failed)$")] = None,
    source_prefix: Annotated[str | None, Query(max_length=2000)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> DocumentPage:
    docs, total = services.ctx.store.list_documents(
        collection=collection,
        status=DocumentStatus(status) if status else None,
        source_prefix=source_prefix,
        limit=limit,
        offset=offset,
    )
    return DocumentPage(
        documents=[document_out(d) for d in docs], total=total, limit=limit, offset=offset
    )


def _document_or_404(services: Services, document_id: str) -> DocumentRecord:
    return actions.get_document(services.ctx.store, document_id)


@router.get("/{document_id}", response_model=DocumentOut, summary="One document")
def get_document(services: ServicesDep, principal: Viewer, document_id: str) -> DocumentOut:
    doc = _document_or_404(services, document_id)
    jobs = services.ctx.ledger.list_jobs(document_id=document_id, limit=1)
    return document_out(doc, job_view(jobs[0]) if jobs else None)


@router.get("/{document_id}/chunks", response_model=ChunkPage, summary="A document's chunks")
def get_chunks(
    services: ServicesDep,
    principal: Viewer,
    document_id: str,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ChunkPage:
    _document_or_404(services, document_id)
    chunks = services.ctx.store.chunks_of(document_id, limit=limit, offset=offset)
    return ChunkPage(
        document_id=document_id,
        chunks=[
            ChunkOut(
                chunk_id=c.id,
                ordinal=c.ordinal,
                text=c.text,
                token_count=c.token_count,
                page=c.page,
                heading=c.heading,
            )
            for c in chunks
        ],
    )


@router.delete("/{document_id}", status_code=204, summary="Delete a document and its chunks")
def delete_document(services: ServicesDep, principal: Editor, document_id: str) -> Response:
    actions.delete_document(services.ctx.store, document_id)
    return Response(status_code=204)


__all__ = ["document_out", "ensure_capacity", "iso", "router"]
