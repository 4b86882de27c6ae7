"""The rq job functions. They stay thin: read by id from storage, call the pipeline, write back.

Jobs get only small arguments (a photo id, face numbers, a mode name). A
`PipelineError` is the user's problem, not a crash: the job returns it as its
outcome `{"error": {"code": ..., "message": ...}}` so the bot can say it. Any
other exception is a real failure and is left to rq.

The loaded models live in one per-process `WorkerContext`: `python -m workers`
prepares it before its work loop; any other rq worker prepares it on the first job.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any, Collection

from pipeline.analysis import analyze_photo, available_modes, process_photo
from pipeline.config import ProvenanceSettings, load_config
from pipeline.models import load_models, resolve_device
from pipeline.provenance import AI_MODES
from pipeline.errors import PipelineError
from pipeline.types import Face

from .connection import connect_redis
from .settings import WorkersConfig
from .storage import Part, PhotoStore, modes_key

logger = logging.getLogger(__name__)

EXPIRED_OUTCOME = {"error": {"code": "expired", "message": "the photo expired before it was processed"}}


@dataclass(frozen=True)
class WorkerContext:
    """What every job in this process shares: loaded models and storage."""

    models: Any
    store: PhotoStore
    device: str
    provenance: ProvenanceSettings = ProvenanceSettings()


_context: WorkerContext | None = None


def prepare_context(config: WorkersConfig, device: str) -> WorkerContext:
    """Load the models and open storage once for this process."""
    global _context
    logger.info("loading models on %s", device)
    models = load_models(config.pipeline, device=device)
    store = PhotoStore(connect_redis(config.redis.url), config.storage.ttl_seconds)
    modes = available_modes(models)
    if modes["replace"] is None:
        modes["replace"] = prepare_donors(models)
    store.connection.set(modes_key(), json.dumps(modes))
    _context = WorkerContext(models=models, store=store, device=device, provenance=config.provenance)
    return _context


def prepare_donors(models) -> str | None:
    """Load replace mode's donors before taking jobs; None when they loaded, else why replace cannot run.

    The first start makes the new identities (minutes), longer than a job may run:
    left to the first replace job, they would time out and be started again, job after job.
    """
    logger.info("preparing replace mode's donors (the first start makes new identities: several minutes)")
    try:
        models.replace.get()
    except PipelineError as error:
        logger.warning("replace mode will not work: %s", error)
        return str(error)
    return None


def get_context() -> WorkerContext:
    """The process's context, prepared on first use from config.yaml and the environment."""
    if _context is not None:
        return _context
    config = load_config(schema=WorkersConfig)
    return prepare_context(config, resolve_device(config.workers.device))


def describe_error(error: PipelineError) -> dict[str, dict[str, str]]:
    """A user-facing failure as a job outcome."""
    return {"error": {"code": error.code, "message": str(error)}}


def analyze(photo_id: str) -> dict[str, Any]:
    """Find the faces of a stored photo and store the face list and the contact sheet."""
    context = get_context()
    photo = context.store.read(photo_id, Part.PHOTO)
    if photo is None:
        return EXPIRED_OUTCOME
    try:
        analysis = analyze_photo(photo, context.models)
    except PipelineError as error:
        logger.info("photo %s refused: %s", photo_id, error.code)
        return describe_error(error)
    analysis_json = json.dumps(analysis.to_json()).encode()
    thumbnails = {face.number: base64.b64encode(crop).decode() for face, crop in zip(analysis.faces, analysis.thumbnails)}
    if not (
        context.store.write(photo_id, Part.ANALYSIS, analysis_json)
        and context.store.write(photo_id, Part.SHEET, analysis.sheet_jpeg)
        and context.store.write(photo_id, Part.THUMBNAILS, json.dumps(thumbnails).encode())
    ):
        return EXPIRED_OUTCOME
    return {"faces": len(analysis.faces)}


def process(photo_id: str, keep: Collection[int], mode: str) -> dict[str, Any]:
    """Apply `mode` to every face of the photo not in `keep` and store the result.

    Beside the result it stores its content type and extension, the faces the
    mode could not change as asked: blurred instead (replace, when it cannot do so
    safely) or left as they were (unmask, for a face without a mask), so the chat
    can say so; and whether AI made some pixels and the file carries Content
    Credentials, so the chat can disclose both.
    """
    context = get_context()
    photo = context.store.read(photo_id, Part.PHOTO)
    analysis_json = context.store.read(photo_id, Part.ANALYSIS)
    if photo is None or analysis_json is None:
        return EXPIRED_OUTCOME
    faces = tuple(Face.from_json(face) for face in json.loads(analysis_json)["faces"])
    try:
        result = process_photo(photo, faces, keep, mode, context.models, context.provenance)
    except PipelineError as error:
        logger.info("photo %s refused: %s", photo_id, error.code)
        return describe_error(error)
    info = {
        "content_type": result.content_type,
        "extension": result.extension,
        "blurred_instead": [r.number for r in result.reports if r.mode == "blur" and mode != "blur"],
        "left_as_they_were": [r.number for r in result.reports if r.mode == "none"],
        "made_by_ai": any(r.mode in AI_MODES for r in result.reports),
        "content_credentials": context.provenance.enabled,
    }
    if not (
        context.store.write(photo_id, Part.RESULT, result.data)
        and context.store.write(photo_id, Part.RESULT_INFO, json.dumps(info).encode())
    ):
        return EXPIRED_OUTCOME
    return {}
