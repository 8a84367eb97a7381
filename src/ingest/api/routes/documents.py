"""/api/v1/documents: uploads, listing, one document, its chunks, deletion."""

from __future__ import annotations

from typing import Annotated

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    Path,
    Query,
    Request,
    Response,
    UploadFile,
)

from ingest.api.problems import JSON_OBJECT_FIELD, problem_responses
from ingest.api.security import Editor, Viewer
from ingest.api.services import Services, get_services
from ingest.errors import InvalidInput, TooManyFiles
from ingest.ingestion import actions
from ingest.ingestion.submit import IncomingFile
from ingest.models import (
    MAX_METADATA_CHARS,
    NO_NUL,
    ChunkOut,
    ChunkPage,
    DocumentOut,
    DocumentPage,
    QueuedUpload,
    UploadAccepted,
    iso,
    parse_metadata,
)
from ingest.store import DocumentRecord
from ingest.vocabulary import MAX_PRIORITY, MIN_PRIORITY, DocumentStatus

router = APIRouter(prefix="/api/v1/documents", tags=["documents"])
ServicesDep = Annotated[Services, Depends(get_services)]
DocumentId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
# Visible ASCII: a key survives every HTTP stack unchanged.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]+$"


def ensure_capacity(services: Services) -> None:
    actions.ensure_capacity(services.ctx.store, services.ctx.settings)


async def _collection_not_blank(request: Request) -> None:
    """An empty `collection` field is a mistake, not a request for the default one
    (FastAPI would read an empty form field as an absent one)."""
    form = await request.form()
    if form.get("collection") == "":
        raise InvalidInput(
            "must not be empty; leave the field out for the default collection",
            field="collection",
        )


@router.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    summary="Upload documents",
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422, 429, 503),
)
def upload_documents(
    services: ServicesDep,
    principal: Editor,
    request: Request,
    files: Annotated[list[UploadFile], File(min_length=1, description="One or more files")],
    collection: Annotated[
        str, Form(min_length=1, max_length=200, pattern=NO_NUL, description="Default: default")
    ] = "default",
    metadata: Annotated[
        str | None,
        Form(
            max_length=MAX_METADATA_CHARS,
            description=(
                "A JSON object stored with every document; `filename` and `code_language` "
                "are reserved"
            ),
            json_schema_extra=JSON_OBJECT_FIELD,
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=200, pattern=IDEMPOTENCY_KEY_PATTERN)
    ] = None,
    _blank: Annotated[None, Depends(_collection_not_blank)] = None,
    priority: Annotated[
        int,
        Form(ge=MIN_PRIORITY, le=MAX_PRIORITY, description="Higher runs first (default 0)"),
    ] = 0,
) -> UploadAccepted:
    """Stage every file (fsync'd), then queue all their jobs in one commit: every
    file of the request is accepted, or none is."""
    settings = services.ctx.settings
    if len(files) > settings.max_files_per_upload:
        raise TooManyFiles(f"at most {settings.max_files_per_upload} files per request")
    meta = parse_metadata(metadata)
    ensure_capacity(services)
    incoming = [IncomingFile(f.filename or f"upload-{i}", f.file) for i, f in enumerate(files)]
    jobs = services.ctx.submitter.submit_upload(
        incoming,
        collection=collection,
        metadata=meta,
        idempotency_key=idempotency_key,
        priority=priority,
    )
    accepted = [
        QueuedUpload(
            job_id=job.id,
            document_id=job.document_id or "",
            filename=str(job.payload.get("filename", "")),
            status=job.status,
        )
        for job in jobs
    ]
    request.state.audit_target = ",".join(a.document_id for a in accepted)
    return UploadAccepted(jobs=accepted)


@router.get(
    "",
    response_model=DocumentPage,
    summary="List documents",
    responses=problem_responses(401, 422, 429),
)
def list_documents(
    services: ServicesDep,
    principal: Viewer,
    collection: Annotated[str | None, Query(max_length=200, pattern=NO_NUL)] = None,
    status: DocumentStatus | None = None,
    source_prefix: Annotated[str | None, Query(max_length=2000, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    parent_id: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=NO_NUL,
            description="Only the child documents of this container (a .zip, an e-mail).",
        ),
    ] = None,
) -> DocumentPage:
    docs, total = services.ctx.store.list_documents(
        collection=collection,
        status=status,
        source_prefix=source_prefix,
        parent_id=parent_id,
        limit=limit,
        offset=offset,
    )
    return DocumentPage(
        documents=[DocumentOut.from_record(d) for d in docs],
        total=total,
        limit=limit,
        offset=offset,
    )


def _document_or_404(services: Services, document_id: str) -> DocumentRecord:
    return actions.get_document(services.ctx.store, document_id)


@router.get(
    "/{document_id}",
    response_model=DocumentOut,
    summary="One document",
    responses=problem_responses(401, 404, 422, 429),
)
def get_document(services: ServicesDep, principal: Viewer, document_id: DocumentId) -> DocumentOut:
    doc = _document_or_404(services, document_id)
    jobs = services.ctx.ledger.list_jobs(document_id=document_id, limit=1)
    return DocumentOut.from_record(doc, jobs[0] if jobs else None)


@router.get(
    "/{document_id}/chunks",
    response_model=ChunkPage,
    summary="A document's chunks",
    responses=problem_responses(401, 404, 422, 429),
)
def get_chunks(
    services: ServicesDep,
    principal: Viewer,
    document_id: DocumentId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ChunkPage:
    _document_or_404(services, document_id)
    chunks = services.ctx.store.chunks_of(document_id, limit=limit, offset=offset)
    return ChunkPage(document_id=document_id, chunks=[ChunkOut.from_record(c) for c in chunks])


@router.delete(
    "/{document_id}",
    status_code=204,
    summary="Delete a document and its chunks",
    response_class=Response,
    responses=problem_responses(401, 403, 404, 422, 429),
)
def delete_document(services: ServicesDep, principal: Editor, document_id: DocumentId) -> Response:
    actions.delete_document(services.ctx.store, document_id)
    return Response(status_code=204)


__all__ = ["ensure_capacity", "iso", "router"]
