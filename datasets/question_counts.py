"""Question counts kept by the database, not counted per request (issue 18).

Counting a topic's questions by intent and status reads the whole topic (about 1 s at a million
questions). Instead, triggers on the question table write the change of every statement to a
small table of deltas (`QuestionCount`: topic, intent, status, removed, n), and reads sum it:

- PostgreSQL: statement-level AFTER INSERT/UPDATE/DELETE triggers with transition tables, one
  aggregated INSERT per statement, so a COPY of a million rows adds a few hundred rows, a review
  adds two, and concurrent writers only ever insert (no shared row to wait on). Updates that
  change none of the counted columns add nothing.
- SQLite (the demo): row-level triggers, one or two rows per changed question.

Triggers cover every write path at once: the services, imports by COPY, bulk updates, the
lifecycle's deletes and merges, raw SQL. A read that meets more than COMPACT_AFTER_ROWS surplus
rows for a topic folds them into one row per key (`question_counts_compact`). The counts are
exact: a writer's deltas commit with its questions.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Count, Sum

from datasets.models import QuestionCount

TABLE = QuestionCount._meta.db_table
# Rows beyond one per key that a topic may gather before a read folds them (each is ~50 bytes;
# summing a thousand costs well under a millisecond).
COMPACT_AFTER_ROWS = 1000

# The counted key of a question row, in both vendors' trigger SQL.
_KEY = "topic_id, intent_id, status, removed_at IS NOT NULL"
_COLUMNS = "topic_id, intent_id, status, removed, n"

POSTGRESQL_TRIGGERS = f"""
CREATE OR REPLACE FUNCTION datasets_question_counts_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {TABLE} ({_COLUMNS})
    SELECT {_KEY}, count(*) FROM inserted GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION datasets_question_counts_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {TABLE} ({_COLUMNS})
    SELECT {_KEY}, -count(*) FROM deleted GROUP BY 1, 2, 3, 4;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION datasets_question_counts_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Keys whose count changed only: a lease, a judge verdict or a text edit adds no row.
    INSERT INTO {TABLE} ({_COLUMNS})
    SELECT topic_id, intent_id, status, removed, sum(n) FROM (
        SELECT {_KEY} AS removed, 1 AS n FROM after_rows
        UNION ALL
        SELECT {_KEY}, -1 FROM before_rows
    ) AS changes
    GROUP BY 1, 2, 3, 4 HAVING sum(n) <> 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION datasets_question_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {TABLE};
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS question_counts_insert ON datasets_question;
DROP TRIGGER IF EXISTS question_counts_delete ON datasets_question;
DROP TRIGGER IF EXISTS question_counts_update ON datasets_question;
DROP TRIGGER IF EXISTS question_counts_truncate ON datasets_question;
CREATE TRIGGER question_counts_insert AFTER INSERT ON datasets_question
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION datasets_question_counts_insert();
CREATE TRIGGER question_counts_delete AFTER DELETE ON datasets_question
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION datasets_question_counts_delete();
CREATE TRIGGER question_counts_update AFTER UPDATE ON datasets_question
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION datasets_question_counts_update();
CREATE TRIGGER question_counts_truncate AFTER TRUNCATE ON datasets_question
    FOR EACH STATEMENT EXECUTE FUNCTION datasets_question_counts_truncate();
"""

POSTGRESQL_TRIGGERS_DROP = """
DROP TRIGGER IF EXISTS question_counts_insert ON datasets_question;
DROP TRIGGER IF EXISTS question_counts_delete ON datasets_question;
DROP TRIGGER IF EXISTS question_counts_update ON datasets_question;
DROP TRIGGER IF EXISTS question_counts_truncate ON datasets_question;
DROP FUNCTION IF EXISTS datasets_question_counts_insert();
DROP FUNCTION IF EXISTS datasets_question_counts_delete();
DROP FUNCTION IF EXISTS datasets_question_counts_update();
DROP FUNCTION IF EXISTS datasets_question_counts_truncate();
"""


def _sqlite_row(prefix: str, n: int) -> str:
    return (f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES ({prefix}.topic_id, {prefix}.intent_id, {prefix}.status, "
            f"{prefix}.removed_at IS NOT NULL, {n});")


# One statement per trigger: Django's SQLite backend runs a script statement by statement.
SQLITE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS question_counts_insert",
    "DROP TRIGGER IF EXISTS question_counts_delete",
    "DROP TRIGGER IF EXISTS question_counts_update",
    f"CREATE TRIGGER question_counts_insert AFTER INSERT ON datasets_question BEGIN {_sqlite_row('NEW', 1)} END",
    f"CREATE TRIGGER question_counts_delete AFTER DELETE ON datasets_question BEGIN {_sqlite_row('OLD', -1)} END",
    "CREATE TRIGGER question_counts_update AFTER UPDATE OF topic_id, intent_id, status, removed_at ON datasets_question"
    " WHEN OLD.topic_id IS NOT NEW.topic_id OR OLD.intent_id IS NOT NEW.intent_id OR OLD.status IS NOT NEW.status"
    " OR (OLD.removed_at IS NULL) <> (NEW.removed_at IS NULL)"
    f" BEGIN {_sqlite_row('OLD', -1)} {_sqlite_row('NEW', 1)} END",
]
SQLITE_TRIGGERS_DROP = SQLITE_TRIGGERS[:3]
TRIGGER_NAMES = ("question_counts_insert", "question_counts_delete", "question_counts_update")


def question_count_triggers_install(using_connection) -> None:
    """Create (or replace) the triggers that keep the counts, for the connection's vendor."""
    vendor = using_connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"Kept question counts need triggers written for {vendor}.")
    with using_connection.cursor() as cursor:
        for statement in [POSTGRESQL_TRIGGERS] if vendor == "postgresql" else SQLITE_TRIGGERS:
            cursor.execute(statement)


def question_count_triggers_drop(using_connection) -> None:
    with using_connection.cursor() as cursor:
        if using_connection.vendor == "postgresql":
            cursor.execute(POSTGRESQL_TRIGGERS_DROP)
        elif using_connection.vendor == "sqlite":
            for statement in SQLITE_TRIGGERS_DROP:
                cursor.execute(statement)


def question_count_triggers_missing(using_connection=connection) -> list[str]:
    """The count triggers the question table lacks (on SQLite, Django remakes a table to alter
    it, which drops its triggers; see DatasetsConfig.ready)."""
    with using_connection.cursor() as cursor:
        if using_connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'datasets_question'::regclass")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'datasets_question'")
        present = {row[0] for row in cursor.fetchall()}
    return [name for name in TRIGGER_NAMES if name not in present]


def question_counts_rebuild(using_connection=connection) -> None:
    """Count every question again (one GROUP BY over the table) and keep that: the initial fill
    and a repair. On PostgreSQL writers wait meanwhile (SHARE lock), so none is lost or counted
    twice between the delete and the count."""
    with transaction.atomic(using=using_connection.alias), using_connection.cursor() as cursor:
        if using_connection.vendor == "postgresql":
            cursor.execute("LOCK TABLE datasets_question IN SHARE MODE")
        cursor.execute(f"DELETE FROM {TABLE}")
        cursor.execute(f"INSERT INTO {TABLE} ({_COLUMNS}) SELECT {_KEY}, count(*) FROM datasets_question "
                       "GROUP BY topic_id, intent_id, status, removed_at IS NOT NULL")


def question_counts_compact(*, topic_ids: list[int]) -> bool:
    """Fold the count rows of these topics into one row per key (zero sums dropped). Deletes and
    re-inserts exactly the rows it read (DELETE … RETURNING), so writers committing meanwhile lose
    nothing. On PostgreSQL a compaction already running elsewhere makes this one a no-op (False)."""
    if not topic_ids:
        return False
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [TABLE])
            if not cursor.fetchone()[0]:
                return False
        placeholders = ", ".join(["%s"] * len(topic_ids))
        cursor.execute(f"DELETE FROM {TABLE} WHERE topic_id IN ({placeholders}) RETURNING {_COLUMNS}",
                       list(topic_ids))
        sums: dict[tuple, int] = defaultdict(int)
        for topic_id, intent_id, status, removed, n in cursor.fetchall():
            sums[(topic_id, intent_id, status, bool(removed))] += n
        QuestionCount.objects.bulk_create([
            QuestionCount(topic_id=topic_id, intent_id=intent_id, status=status, removed=removed, n=n)
            for (topic_id, intent_id, status, removed), n in sums.items() if n])
    return True


@dataclass(frozen=True)
class KeptCount:
    topic_id: int
    intent_id: int
    status: str
    n: int


def kept_counts(*, topic_ids: list[int] | None = None, intent_ids: list[int] | None = None,
                include_removed: bool = False) -> list[KeptCount]:
    """Questions per (topic, intent, status) of these topics and/or intents, removed questions
    only when asked for; keys with no questions left out. One query (and, when a topic has
    gathered many rows, its compaction)."""
    rows = QuestionCount.objects.all()
    if topic_ids is not None:
        rows = rows.filter(topic_id__in=list(topic_ids))
    if intent_ids is not None:
        rows = rows.filter(intent_id__in=list(intent_ids))
    if not include_removed:
        rows = rows.filter(removed=False)
    grouped = rows.values("topic_id", "intent_id", "status").annotate(total=Sum("n"), rows=Count("*")).order_by()
    counts, surplus = [], defaultdict(int)
    for row in grouped:
        surplus[row["topic_id"]] += row["rows"] - 1
        if row["total"]:
            counts.append(KeptCount(row["topic_id"], row["intent_id"], row["status"], row["total"]))
    crowded = [topic_id for topic_id, extra in surplus.items() if extra > COMPACT_AFTER_ROWS]
    if crowded:
        question_counts_compact(topic_ids=crowded)
    return counts


def intent_status_counts(*, topic_id: int) -> dict[int, dict[str, int]]:
    """{intent id: {status: questions}} of a topic's questions, removed ones left out."""
    counts: dict[int, dict[str, int]] = {}
    for row in kept_counts(topic_ids=[topic_id]):
        counts.setdefault(row.intent_id, {})[row.status] = row.n
    return counts


def status_counts_by(*, field: str, ids: list[int], include_removed: bool) -> dict[int, dict[str, int]]:
    """{id: {status: questions}} for these topics or intents (`field`: "topic_id" or "intent_id");
    every id has an entry, empty when it has no questions."""
    counts: dict[int, dict[str, int]] = {pk: {} for pk in ids}
    if not ids:
        return counts
    selector = {"topic_ids": ids} if field == "topic_id" else {"intent_ids": ids}
    for row in kept_counts(**selector, include_removed=include_removed):
        by_status = counts[getattr(row, field)]
        by_status[row.status] = by_status.get(row.status, 0) + row.n
    return counts


def question_counts_differences() -> dict[tuple, tuple[int, int]]:
    """{(topic, intent, status, removed): (kept, counted)} wherever the kept counts differ from a
    GROUP BY over the question table (a full read: for a check, not for a page). Empty when exact."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {_KEY}, count(*) FROM datasets_question GROUP BY 1, 2, 3, 4")
        counted = {(t, i, s, bool(r)): n for t, i, s, r, n in cursor.fetchall()}
    kept: dict[tuple, int] = defaultdict(int)
    for row in QuestionCount.objects.values("topic_id", "intent_id", "status", "removed").annotate(
            total=Sum("n")).order_by():
        kept[(row["topic_id"], row["intent_id"], row["status"], row["removed"])] += row["total"]
    keys = {key for key, n in kept.items() if n} | set(counted)
    return {key: (kept.get(key, 0), counted.get(key, 0)) for key in sorted(keys)
            if kept.get(key, 0) != counted.get(key, 0)}
