"""Workers-only constants. Every time value states its unit in its name."""

KEY_PREFIX = "photobot"
"""Prefix of every Redis key this package writes (rq keeps its own `rq:` keys)."""

LIVENESS_TTL_SECONDS = 10
"""A running job whose worker has not sent a heartbeat for this long counts as abandoned."""

LIVENESS_INTERVAL_SECONDS = 2
"""How often a busy worker renews the liveness of its running job."""

WATCHDOG_INTERVAL_SECONDS = 2
"""How often each worker looks for abandoned jobs of dead workers and requeues or fails them."""

RETRIES_AFTER_LOST_WORKER = 1
"""How many times a job is requeued after its worker died (or it crashed) before it fails."""

WORKER_TTL_SECONDS = 30
"""rq worker TTL; rq also waits at most this minus 15 seconds on an empty queue between checks."""

MAINTENANCE_INTERVAL_SECONDS = 60
"""How often rq's own registry maintenance runs (rq's default is 10 minutes)."""

REDIS_RETRIES = 10
"""How many times one Redis command is retried after a connection error before it raises."""

REDIS_RETRY_CAP_SECONDS = 2.0
"""Longest pause between two retries of one Redis command."""

REDIS_HEALTH_CHECK_INTERVAL_SECONDS = 15
"""An idle pooled Redis connection is pinged before reuse when it has been idle this long."""

POLL_INTERVAL_SECONDS = 0.1
"""How often `PhotoJobs.wait` reads a job's status."""

JOB_STOP_GRACE_SECONDS = 3
"""After SIGTERM, how long a worker lets the job in hand finish before it puts it back in the queue."""

ADAPTERS_STOP_TIMEOUT_SECONDS = 3
"""How long the service waits for the chat adapters after SIGTERM before it kills them."""

WORKER_STOP_TIMEOUT_SECONDS = JOB_STOP_GRACE_SECONDS + 2
"""How long the service waits for a worker after SIGTERM (its grace, then requeue and exit) before it kills it."""

REDIS_STOP_TIMEOUT_SECONDS = 1
"""How long the service waits for its private Redis to flush its append-only file and exit."""

EMBEDDED_REDIS_START_TIMEOUT_SECONDS = 10
"""How long the service waits for its private Redis server to answer."""

DEMO_TIMEOUT_SECONDS = 300
"""How long the demo waits for each of its two jobs."""

CLAIM_TTL_SECONDS = 30
"""How long an owner's claim on a new job lives before the job is confirmed enqueued."""
