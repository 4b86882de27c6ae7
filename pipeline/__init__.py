"""A pure image library: find faces, draw the contact sheet, change faces.

It knows nothing of Redis, rq or chat. Load the models once with `load_models`
and pass them to `analyze_photo` and `process_photo`.
"""

import os

# OpenMP threads that spin while idle steal the CPU from the next model (and from
# other workers on the machine); it must be set before torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pipeline.analysis import Analysis, Result, analyze_photo, available_modes, change_faces, find_faces, process_photo
from pipeline.config import load_config
from pipeline.errors import MissingWeights, PhotoError, PipelineError
from pipeline.models import Models, load_models
from pipeline.types import Face

__all__ = [
    "Analysis", "Face", "MissingWeights", "Models", "PhotoError", "PipelineError", "Result",
    "analyze_photo", "available_modes", "change_faces", "find_faces", "load_config", "load_models", "process_photo",
]
