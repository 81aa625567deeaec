"""The paraphrase index in the database: writes of band keys and lookups of candidates.

Every write path of a question calls paraphrase_index_write in the transaction that writes the
question (Question.save, question_bulk_create, the import's COPY), so the index is never behind
the table; paraphrase_index_fill catches rows written by a path that bypassed them (raw SQL).
"""

from collections.abc import Iterable, Sequence
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Exists, OuterRef

from datasets.health.paraphrase import (
    PARAPHRASE_BANDS,
    PARAPHRASE_THRESHOLD,
    paraphrase_keys_batch,
    paraphrase_shingles,
    paraphrase_similarity,
)
from datasets.models import Question, QuestionBand
from datasets.normalize import near_duplicate_key

WRITE_BATCH = 5000
# A lookup's work is bounded whatever the topic's size: at most this many questions are read per
# band key (a key shared by more is a crowd of templated questions or of one text's near copies),
# and the texts of at most LOOKUP_GROUPS near-duplicate groups are read and compared.
LOOKUP_PER_KEY = 100
LOOKUP_GROUPS = 20
# A listed paraphrase's near copies are counted up to this (a count, not a listing: bounded too).
NEAR_COPIES_COUNTED = 999


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
            for (pk, text), band_keys in zip(items, keys, strict=True):
                # The same function that keys Question.near_key from the same text (Question.save).
                near_key = near_duplicate_key(text)
                rows.extend((pk, band, key, near_key) for band, key in enumerate(band_keys))
        written += _bands_insert(rows)
    return written


def _bands_insert(rows: list[tuple[int, int, int, int]]) -> int:
    if not rows:
        return 0
    if connection.vendor == "postgresql":  # COPY: a tenth of the cost of an INSERT per row
        with connection.cursor() as cursor, cursor.cursor.copy(
                f"COPY {QuestionBand._meta.db_table} (question_id, band, key, near_key) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows)
    QuestionBand.objects.bulk_create([QuestionBand(question_id=q, band=b, key=k, near_key=n) for q, b, k, n in rows],
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


@contextmanager
def _without_nested_loops():
    """A cursor whose statements PostgreSQL plans without nested loops, in a transaction (a savepoint
    inside the caller's) that restores the setting after; an error rolls the setting back with it."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('enable_nestloop'), set_config('enable_nestloop', 'off', true)")
        before = cursor.fetchone()[0]
        yield cursor
        cursor.execute("SELECT set_config('enable_nestloop', %s, true)", [before])


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
    """The paraphrases of `question` in its whole topic, most similar first, one per near-duplicate
    group: questions sharing a band key (one index lookup) whose word shingles have a Jaccard
    similarity of at least `threshold`. Rows: id, text, status, intent_id, score, near_copies (how
    many other questions of the topic share the row's near-duplicate key, up to
    NEAR_COPIES_COUNTED; they are not listed: a near copy tells the reviewer nothing more).

    The question's own near-duplicate group is left out (the review screen lists it first, by
    the key). Per group one member is compared, the one sharing most bands with the question
    (then the lowest id); groups sharing most bands are compared first, at most
    max(LOOKUP_GROUPS, 4 x limit) of them, so a topic where every text has 40 near copies costs
    what one without copies does."""
    keys = list(QuestionBand.objects.filter(question_id=question.pk).values_list("key", flat=True))
    if len(keys) < PARAPHRASE_BANDS:  # not indexed yet (raw SQL writes): compute, do not store in a read
        keys = paraphrase_keys_batch([question.text], topic_id=question.topic_id)[0]
    own_group = question.near_key if question.near_key is not None else near_duplicate_key(question.text)
    candidates = _candidate_groups(question=question, keys=keys, own_group=own_group,
                                   groups=max(LOOKUP_GROUPS, 4 * limit))
    mine = paraphrase_shingles(question.text)
    rows = []
    for pk, text, status, intent_id, near_key in candidates:
        score = paraphrase_similarity(mine, paraphrase_shingles(text))
        if score >= threshold:
            rows.append({"id": pk, "text": text, "status": status, "intent_id": intent_id, "score": score,
                         "near_key": near_key})
    rows.sort(key=lambda r: (-r["score"], r["id"]))
    rows = rows[:limit]
    copies = _near_copies(topic_id=question.topic_id, near_keys=[r["near_key"] for r in rows if r["near_key"] is not None])
    for row in rows:
        near_key = row.pop("near_key")
        row["near_copies"] = max(copies.get(near_key, 1) - 1, 0) if near_key is not None else 0
    return rows


def _candidate_groups(*, question: Question, keys: list[int], own_group: int,
                      groups: int) -> list[tuple[int, str, str, int, int | None]]:
    """(id, text, status, intent_id, near_key) of one member per near-duplicate group sharing a band
    key with `question`, outside its own group: the member sharing most bands (then the lowest id),
    the groups sharing most bands first, at most `groups`. A question without a near key (not
    keyed yet) is a group of its own."""
    if connection.vendor != "postgresql":  # the SQLite demo: the same rule in Python
        return _candidate_groups_portable(question=question, keys=keys, own_group=own_group, groups=groups)
    band, table = QuestionBand._meta.db_table, Question._meta.db_table
    # One statement: the band rows of each key (bounded, the first ones the index holds), counted
    # per question and collapsed to one member per near-duplicate group from the key index alone
    # (it holds each row's question and near key), so only the chosen members' rows are read.
    # A band key mixes in the topic, so the topic check on those rows only guards against a hash
    # collision with another topic. Band rows written without a near key (raw SQL) fall back to
    # the question's.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH shared AS (
                SELECT b.question_id, b.near_key, count(*) AS bands
                FROM (SELECT DISTINCT unnest(%s::bigint[]) AS key) k
                CROSS JOIN LATERAL (SELECT question_id, near_key FROM {band}
                                    WHERE key = k.key AND question_id <> %s LIMIT %s) b
                GROUP BY b.question_id, b.near_key
            ), keyed AS (
                SELECT s.question_id, s.bands,
                       COALESCE(s.near_key, (SELECT q.near_key FROM {table} q WHERE q.id = s.question_id)) AS near_key
                FROM shared s
            ), members AS (
                SELECT question_id, bands, row_number() OVER (
                    PARTITION BY near_key, CASE WHEN near_key IS NULL THEN question_id END
                    ORDER BY bands DESC, question_id) AS place
                FROM keyed
                WHERE near_key IS DISTINCT FROM %s
            ), chosen AS (
                SELECT question_id, bands FROM members WHERE place = 1 ORDER BY bands DESC, question_id LIMIT %s
            )
            SELECT q.id, q.text, q.status, q.intent_id, q.near_key
            FROM chosen c JOIN {table} q ON q.id = c.question_id
            WHERE q.topic_id = %s
            ORDER BY c.bands DESC, c.question_id
            """,
            [keys, question.pk, LOOKUP_PER_KEY, own_group, groups, question.topic_id])
        return cursor.fetchall()


def _candidate_groups_portable(*, question: Question, keys: list[int], own_group: int,
                               groups: int) -> list[tuple[int, str, str, int, int | None]]:
    bands: dict[int, int] = {}
    for key in set(keys):
        for pk in (QuestionBand.objects.filter(key=key).exclude(question_id=question.pk).order_by("question_id")
                   .values_list("question_id", flat=True)[:LOOKUP_PER_KEY]):
            bands[pk] = bands.get(pk, 0) + 1
    best: dict[object, tuple[int, int]] = {}
    for pk, near_key in Question.objects.filter(pk__in=list(bands), topic_id=question.topic_id).exclude(
            near_key=own_group).values_list("pk", "near_key"):
        group = near_key if near_key is not None else ("id", pk)
        best[group] = min(best.get(group, (0, pk)), (-bands[pk], pk))
    chosen = [pk for _, pk in sorted(best.values())[:groups]]
    found = {row[0]: row for row in Question.objects.filter(pk__in=chosen).values_list(
        "pk", "text", "status", "intent_id", "near_key")}
    return [found[pk] for pk in chosen]


def _near_copies(*, topic_id: int, near_keys: list[int]) -> dict[int, int]:
    """{near key: questions of the topic with it}, each counted up to NEAR_COPIES_COUNTED + 1."""
    if not near_keys:
        return {}
    if connection.vendor != "postgresql":
        return {key: Question.objects.filter(topic_id=topic_id, near_key=key)[:NEAR_COPIES_COUNTED + 1].count()
                for key in set(near_keys)}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT g.near_key, (SELECT count(*) FROM (SELECT 1 FROM {Question._meta.db_table} q
                                                     WHERE q.topic_id = %s AND q.near_key = g.near_key
                                                     LIMIT %s) c)
            FROM (SELECT DISTINCT unnest(%s::bigint[]) AS near_key) g
            """, [topic_id, NEAR_COPIES_COUNTED + 1, near_keys])
        return dict(cursor.fetchall())


def paraphrase_candidate_pairs(*, questions, max_bucket: int = 8) -> Iterable[tuple[int, int]]:
    """Pairs (lower id, higher id) of `questions` sharing a band key, each once per shared key.
    A key shared by more than `max_bucket` questions (a crowd of templated questions) pairs each
    with its next `max_bucket` neighbours by id, so the cost stays linear."""
    ids = questions.order_by().values("pk")
    if connection.vendor == "postgresql":  # only the shared keys leave the database, grouped there
        subquery, params = ids.query.sql_with_params()
        # A plain cursor, not a server-side one: PostgreSQL plans those for the first rows (a nested
        # loop over the key index), which took 40 s on 10,000 questions instead of a hash join's 0.1 s.
        # Nested loops are off for the statement too: on a table without statistics yet (just
        # loaded, or still in its loading transaction) the planner expects one row a side and probed
        # every question for each band row (20 minutes on CLINC150).
        with _without_nested_loops() as cursor:
            cursor.execute(
                f"SELECT array_agg(b.question_id ORDER BY b.question_id) FROM {QuestionBand._meta.db_table} b "
                f"WHERE b.question_id IN ({subquery}) GROUP BY b.key HAVING count(*) > 1", params)
            buckets = cursor.fetchall()  # already in this process: a plain cursor reads the whole result
        for (members,) in buckets:
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
