import pytest

from distiller.ratelimit import redis_connection
from distiller.teacher.server import TeacherConfig, start_in_thread


@pytest.fixture
def teacher():
    """The project's test teacher (an OpenAI-compatible stand-in for an LLM) over real HTTP."""
    redis_connection().flushdb()  # provider limits and queues of earlier tests
    server = start_in_thread(TeacherConfig())
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()
