"""Entry points of the health report: a topic's, or a file's (validate-only: nothing written)."""

from datasets.health.report import health_report
from datasets.health.sources import file_health_data, topic_health_data
from datasets.models import Topic


def topic_health_report(*, topic: Topic) -> dict:
    """The health report of a topic's questions (see datasets/health/report.py). Indexes any
    question the paraphrase index lacks; writes nothing else."""
    return health_report(topic_health_data(topic=topic))


def file_health_report(*, files: list[tuple[str, object]], format: str = "", languages: list[str] | None = None,
                       text_column: str = "", intent_column: str = "") -> dict:
    """The health report of files that are not imported: (name, seekable binary stream) pairs.
    Reads nothing from and writes nothing to the database. Raises DatasetError on a file it
    cannot read (too large, binary, not UTF-8, columns it does not know)."""
    return health_report(file_health_data(files=files, format=format, languages=languages,
                                          text_column=text_column, intent_column=intent_column))
