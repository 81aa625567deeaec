"""Teacher pools: several providers with weights behind one client.

Each call goes to a live member drawn by weight; every member keeps its own client, so its own
limits (concurrency, requests per minute, across all workers) and retries. A member that fails
fatally (401, 402, 403, quota, a dead endpoint) or stays unavailable after its retries is taken
out of the pool for the rest of the job, and the call is asked again of the others; only when
none is left does the error reach the run. Each answer says which member made it, so every
question records its own provider and model.
"""

import logging
import random
import threading
from dataclasses import dataclass

from distiller.llm import LLMClient, LLMFatalError, LLMUnavailableError

logger = logging.getLogger(__name__)


@dataclass
class PoolMember:
    provider: object  # LLMProvider
    client: LLMClient
    weight: float
    failed: str = ""  # why it was taken out ("" while it serves)


class TeacherPool:
    """The clients of a run's pool, drawn by weight; the same calls as LLMClient.complete_json."""

    def __init__(self, members: list[PoolMember], *, rng: random.Random | None = None):
        self.members = members
        self._lock = threading.Lock()
        self._rng = rng or random.Random()
        self._last_error: Exception | None = None  # what took the last member out

    def live(self) -> list[PoolMember]:
        with self._lock:
            return [m for m in self.members if not m.failed and m.weight > 0]

    def _draw(self) -> PoolMember | None:
        live = self.live()
        if not live:
            return None
        with self._lock:
            return self._rng.choices(live, weights=[m.weight for m in live])[0]

    def _take_out(self, member: PoolMember, error: LLMFatalError | LLMUnavailableError) -> None:
        with self._lock:
            if not member.failed:
                member.failed = error.message
                self._last_error = error
                logger.warning("pool: %s taken out: %s", member.provider.name, error.message)

    def complete_json_sourced(self, **request):
        """(answer, provider name, model) from the first live member that answers. Raises the error
        that took the last member out when every member failed (also in a thread that finds the
        pool empty because another thread's call took it out)."""
        while True:
            member = self._draw()
            if member is None:
                last = self._last_error
                # A new instance of the same error: threads must not share one exception's traceback.
                raise type(last)(last.message) if last else LLMFatalError("The teacher pool has no provider left.")
            try:
                answer = member.client.complete_json(**request)
            except (LLMFatalError, LLMUnavailableError) as exc:
                others = [m for m in self.live() if m is not member]
                if isinstance(exc, LLMUnavailableError) and not others:
                    raise  # the last one: a slow spell fails this call, not the provider for good
                self._take_out(member, exc)
                continue
            return answer, member.provider.name, member.client.served_model()

    def complete_json(self, **request):
        return self.complete_json_sourced(**request)[0]

    def served_model(self) -> str:
        """The first live member's model (draws nothing: the draws stay one per call)."""
        member = next(iter(self.live()), self.members[0])
        return member.client.served_model()

    def client_for(self, provider_id: int) -> LLMClient | None:
        return next((m.client for m in self.members if m.provider.pk == provider_id), None)
