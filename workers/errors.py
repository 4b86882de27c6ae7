"""What can go wrong when a chat adapter talks to the job queue."""

from __future__ import annotations


class PhotoJobsError(Exception):
    """Base class of the errors `PhotoJobs` raises."""


class BusyError(PhotoJobsError):
    """The owner already has a photo queued or in work; one photo at a time."""


class PhotoExpired(PhotoJobsError):
    """The photo id is unknown, expired, forgotten, cancelled or belongs to someone else."""


class NotReady(PhotoJobsError):
    """The data asked for does not exist (yet): the job is still running or it failed."""
