"""The paraphrase index in the database: writes of band keys and lookups of candidates.

Every write path of a question calls paraphrase_index_write in the transaction that writes the
question (Question.save, question_bulk_create, the import's COPY), so the index is never behind
the table; paraphrase_index_fill catches rows written by a path that bypassed them (raw SQL).
"""

from collections.abc import Iterable, Sequence

from django.db import connection
from django.db.models import Exists, OuterRef

from datasets.health.paraphrase import (
    PARAPHRASE_BANDS,
    PARAPHRASE_THRESHOLD,
    paraphrase_keys_batch,
    paraphrase_shingles,
    paraphrase_similarity,
)
from datasets.models import Question, QuestionBand

WRITE_BATCH = 5000
# Candidates read per lookup: a question sharing a band with more is in a crowd of templated
# questions; the first ones by id are compared, and the lookup stays a few milliseconds.
MAX_CANDIDATES = 500


def paraphrase_index_write(*, questions: Sequence[tuple[int, int, str]], replace: bool = False) -> int:
    """Store the band keys of `questions`, (id, topic id, text) triples; `replace` drops their
    old keys first (an edited text). Returns how many band rows were written."""
    written = 0
    for start in range(0, len(questions), WRITE_BATCH):
        chunk = questions[start:start + WRITE_BATCH]
        if replace:
            QuestionBand.objects.filter(question_id__in=[pk for pk, _, _ in chunk]).delete()
        by_topic: dict[int, list[tuple[int, str]]] = {}
        for pk, topic_id, text in chunk:
            by_topic.setdefault(topic_id, []).append((pk, text))
        rows = []
        for topic_id, items in by_topic.items():
            keys = paraphrase_keys_batch([text for _, text in items], topic_id=topic_id)
            rows.extend((pk, band, key) for (pk, _), band_keys in zip(items, keys, strict=True)
                        for band, key in enumerate(band_keys))
        written += _bands_insert(rows)
    return written


def _bands_insert(rows: list[tuple[int, int, int]]) -> int:
    if not rows:
        return 0
    if connection.vendor == "postgresql":  # COPY: a tenth of the cost of an INSERT per row
        with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {QuestionBand._meta.db_table} (question_id, band, key) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows)
    QuestionBand.objects.bulk_create([QuestionBand(question_id=q, band=b, key=k) for q, b, k in rows],
                                     batch_size=WRITE_BATCH)
    return len(rows)


def paraphrase_index_write_by_hash(*, topic_id: int, texts_by_hash: dict[str, str]) -> int:
    """Index questions just written in bulk without their ids (bulk create ignoring conflicts,
    COPY): found again by their text hash, one query per batch."""
    written = 0
    hashes = list(texts_by_hash)
    for start in range(0, len(hashes), WRITE_BATCH):
        found = Question.objects.filter(topic_id=topic_id, text_hash__in=hashes[start:start + WRITE_BATCH])
        written += paraphrase_index_write(
            questions=[(pk, topic_id, text) for pk, text in found.values_list("pk", "text")])
    return written


def questions_unindexed(questions):
    """Those of `questions` without band keys."""
    return questions.filter(~Exists(QuestionBand.objects.filter(question_id=OuterRef("pk"))))


def paraphrase_index_fill(*, questions, batch_size: int = WRITE_BATCH) -> int:
    """Index those of `questions` that have no band keys (rows written by raw SQL); returns how
    many questions were indexed."""
    filled, last = 0, 0
    # Walk forward by primary key: restarting from the first row each batch re-probed every row
    # already indexed (quadratic: a million questions took over ten minutes).
    while batch := list(questions_unindexed(questions.filter(pk__gt=last)).order_by("pk")
                        .values_list("pk", "topic_id", "text")[:batch_size]):
        paraphrase_index_write(questions=batch)
        filled += len(batch)
        last = batch[-1][0]
    return filled


def question_paraphrases(*, question: Question, limit: int = 5,
                         threshold: float = PARAPHRASE_THRESHOLD) -> list[dict]:
    """The paraphrases of `question` in its whole topic, most similar first: questions sharing a
    band key (one index lookup) whose word shingles have a Jaccard similarity of at least
    `threshold`. Rows: id, text, status, intent_id, score."""
    keys = list(QuestionBand.objects.filter(question_id=question.pk).values_list("key", flat=True))
    if len(keys) < PARAPHRASE_BANDS:  # not indexed yet (raw SQL writes): compute, do not store in a read
        keys = paraphrase_keys_batch([question.text], topic_id=question.topic_id)[0]
    candidate_ids = (QuestionBand.objects.filter(key__in=keys).exclude(question_id=question.pk)
                     .order_by("question_id").values_list("question_id", flat=True).distinct()[:MAX_CANDIDATES])
    candidates = Question.objects.filter(pk__in=list(candidate_ids), topic_id=question.topic_id)
    mine = paraphrase_shingles(question.text)
    rows = []
    for row in candidates.values("id", "text", "status", "intent_id"):
        score = paraphrase_similarity(mine, paraphrase_shingles(row["text"]))
        if score >= threshold:
            rows.append({**row, "score": score})
    rows.sort(key=lambda r: (-r["score"], r["id"]))
    return rows[:limit]


def paraphrase_candidate_pairs(*, questions, max_bucket: int = 8) -> Iterable[tuple[int, int]]:
    """Pairs (lower id, higher id) of `questions` sharing a band key, each once per shared key.
    A key shared by more than `max_bucket` questions (a crowd of templated questions) pairs each
    with its next `max_bucket` neighbours by id, so the cost stays linear."""
    ids = questions.order_by().values("pk")
    if connection.vendor == "postgresql":  # only the shared keys leave the database, grouped there
        subquery, params = ids.query.sql_with_params()
        # A plain cursor, not a server-side one: PostgreSQL plans those for the first rows (a nested
        # loop over the key index), which took 40 s on 10,000 questions instead of a hash join's 0.1 s.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT array_agg(b.question_id ORDER BY b.question_id) FROM {QuestionBand._meta.db_table} b "
                f"WHERE b.question_id IN ({subquery}) GROUP BY b.key HAVING count(*) > 1", params)
            while chunk := cursor.fetchmany(5000):
                for (members,) in chunk:
                    for i, a in enumerate(members):
                        for b in members[i + 1:i + 1 + max_bucket]:
                            yield a, b
        return
    buckets = (QuestionBand.objects.filter(question_id__in=ids).order_by("key", "question_id")
               .values_list("key", "question_id"))
    current, members = None, []

    def pairs_of(members):
        for i, a in enumerate(members):
            for b in members[i + 1:i + 1 + max_bucket]:
                yield a, b

    for key, question_id in buckets.iterator(chunk_size=20000):
        if key != current:
            if len(members) > 1:
                yield from pairs_of(members)
            current, members = key, []
        members.append(question_id)
    if len(members) > 1:
        yield from pairs_of(members)
