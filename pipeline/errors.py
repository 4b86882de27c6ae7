"""What can go wrong in the pipeline, named after what went wrong.

Each error carries a short machine `code` (the bots pick a localised text by
it) and a one-line English message that a person understands.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: bad input or a missing prerequisite, never a bug."""

    code = "error"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class PhotoError(PipelineError):
    """The photo cannot be used: unsupported format, corrupt, or too large.

    Codes: `unsupported_format`, `corrupt`, `too_large`, `empty`.
    """

    code = "corrupt"


class UnknownMode(PipelineError):
    code = "unknown_mode"


class InvalidSelection(PipelineError):
    """A --keep list names a face that does not exist, or cannot be read."""

    code = "invalid_selection"


class WeightsError(PipelineError):
    """A weight file is missing or does not match the manifest."""

    code = "missing_weights"


class MissingWeights(WeightsError):
    """A weight file a model needs is not on disk."""

    def __init__(self, file: str, fetch_command: str):
        super().__init__(f"missing weight file {file}; fetch it with: {fetch_command}")
        self.file = file
        self.fetch_command = fetch_command


class CorruptWeights(WeightsError):
    """A weight file's size or sha256 differs from the manifest."""

    code = "corrupt_weights"
