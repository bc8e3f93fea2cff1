"""WorklistSink: every coded note joins its encounter's worklist item. Implements ``types.Sink``."""

from __future__ import annotations

from typing import Sequence

import redis

from engine.pipeline.idempotency import redis_client
from engine.pipeline.types import ProcessedNote, TransientError
from engine.worklist.store import WorklistStore
from schemas.settings import RedisSettings


class WorklistSink:
    """Merges each coded note into its encounter's worklist item in Redis. Implements ``types.Sink``."""

    dependency = "redis"  # what a TransientError from here means (retry metrics, readiness)

    def __init__(self, store: WorklistStore) -> None:
        self.store = store

    @classmethod
    def from_settings(cls, settings: RedisSettings) -> "WorklistSink":
        return cls(WorklistStore(redis_client(settings), settings.key_prefix))

    def write(self, notes: Sequence[ProcessedNote]) -> None:
        """Returns once Redis has applied every item change; a Redis outage is a TransientError (the
        batch is retried; merging is idempotent, so a retried note changes nothing twice)."""
        try:
            self.store.add_notes(notes)
        except (redis.ConnectionError, redis.TimeoutError) as err:
            raise TransientError(f"Redis unavailable for the worklist: {type(err).__name__}") from err

    def close(self) -> None:
        self.store.r.close()
