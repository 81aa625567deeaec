"""One question unit: N questions for one intent, asked in concurrent batches, topped up in rounds.

Idempotent: the unit counts the questions this run already holds for the intent before each
write, in the same transaction that inserts, and inserts only up to its target. Exact
duplicates are refused by the topic-wide text hash; near duplicates by n-gram similarity.
"""

import hashlib
import math
import random
from concurrent.futures import as_completed

from django.db import transaction

from datasets.models import Question
from datasets.normalize import text_hash
from datasets.services import question_bulk_create
from distiller import prompts
from distiller.dedup import NearDuplicateIndex
from distiller.llm import LLMError, LLMFatalError, Usage
from distiller.mix import mix_draw
from distiller.models import DistillationUnit
from distiller.services.runs import ASK_MARGIN

MAX_ROUNDS = 4
MAX_TEXT_LENGTH = 2000
EXISTING_IN_PROMPT = 30  # enough to steer away from repeats without bloating every call


def _rng(*parts) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big"))


def question_unit_run(ctx, unit: DistillationUnit) -> tuple[bool, str]:
    """Bring the run's questions for `unit.node` up to `unit.target`. Returns (failed, error)."""
    p, intent = ctx.parameters, unit.node
    path = [n.name for n in intent.ancestors()]
    usage, errors = Usage(unit_id=unit.pk), []
    for round_number in range(MAX_ROUNDS):
        ctx.check()
        have = Question.objects.filter(run_id=ctx.run_id, intent=intent).count()
        need = unit.target - have
        if need <= 0:
            break
        existing = list(Question.objects.filter(intent=intent).order_by("id").values_list("text", flat=True))
        seen_hashes = {text_hash(text) for text in existing}
        similar = NearDuplicateIndex(p["near_duplicate_threshold"])
        for text in existing:
            similar.add(text, force=True)
        rng = _rng(p["seed"], unit.key, unit.attempts, round_number)
        ask = need + math.ceil(need * ASK_MARGIN)
        specs = [{"n": n, **mix_draw(p["mix"], rng)} for n in range(1, ask + 1)]
        batches = [specs[i:i + p["questions_per_call"]] for i in range(0, ask, p["questions_per_call"])]
        futures = {ctx.call_pool.submit(_ask, ctx, path, intent.description, batch, existing[-EXISTING_IN_PROMPT:],
                                        usage): batch for batch in batches}
        round_created, round_errors, fatal = 0, [], None
        try:
            for future in as_completed(futures):
                try:
                    answer = future.result()
                except LLMFatalError as exc:
                    # Stop asking, but still write the answers already paid for.
                    fatal = fatal or exc
                    ctx.stop.set()
                    continue
                except LLMError as exc:
                    round_errors.append(exc.message)
                    _write(ctx, unit, [], usage)
                    continue
                rows, counts = _screen(ctx, intent.pk, answer, futures[future], seen_hashes, similar)
                round_created += _write(ctx, unit, rows, usage, **counts)
        finally:
            for future in futures:
                future.cancel()
        if fatal is not None:
            _write(ctx, unit, [], usage)
            raise fatal
        errors = round_errors
        if round_created == 0 and round_errors:
            break  # every call of the round failed: more rounds would fail the same way
    have = Question.objects.filter(run_id=ctx.run_id, intent=intent).count()
    if have < unit.target and errors:
        return True, errors[-1]
    return False, ""


def _ask(ctx, path, description, batch, existing, usage):
    if ctx.stop.is_set():
        return None
    p = ctx.parameters
    messages = prompts.QUESTIONS.messages(topic=ctx.topic.name, intent_path=path, description=description,
                                         language=p["language"], items=batch, existing=existing)
    return ctx.client.complete_json(messages=messages, schema=prompts.QUESTIONS.Answer, schema_name="questions",
                                    temperature=p["temperature"], usage=usage)


def _screen(ctx, intent_id: int, answer, batch, seen_hashes: set, similar: NearDuplicateIndex) -> tuple[list[dict], dict]:
    """Rows worth inserting from one answer, and what was dropped and why."""
    counts = {"duplicates_dropped": 0, "near_duplicates_dropped": 0, "invalid_dropped": 0}
    if answer is None:
        return [], counts
    p, model = ctx.parameters, ctx.model()
    rows = []
    for spec, item in _pair(batch, answer.questions):
        text = " ".join(item.text.split())
        if not text or len(text) > MAX_TEXT_LENGTH or spec is None:
            counts["invalid_dropped"] += 1  # empty, absurd, or an item we did not ask for (or twice)
            continue
        digest = text_hash(text)
        if digest in seen_hashes:
            counts["duplicates_dropped"] += 1
            continue
        if not similar.add(text):
            counts["near_duplicates_dropped"] += 1
            continue
        seen_hashes.add(digest)
        rows.append({
            "intent_id": intent_id, "text": text, "language": p["language"],
            "source": Question.Source.GENERATED, "run_id": ctx.run_id, "provider": ctx.provider.name,
            "model": model, "temperature": p["temperature"], "prompt_version": prompts.QUESTIONS.VERSION,
            "style": spec["style"], "complexity": spec["complexity"], "audience": spec["audience"],
            "edge_case": "" if spec["edge_case"] == "none" else spec["edge_case"],
        })
    return rows, counts


def _pair(batch: list[dict], items: list) -> list[tuple[dict | None, object]]:
    """Each answered item with the requested spec it answers (None: not asked for, or answered twice).

    By `n`; but some models number every batch from 1 whatever we asked, so when the numbers
    are not the ones requested, by position.
    """
    specs = {spec["n"]: spec for spec in batch}
    if not {item.n for item in items} <= set(specs):
        return [(batch[i] if i < len(batch) else None, item) for i, item in enumerate(items)]
    return [(specs.pop(item.n, None), item) for item in items]


def _write(ctx, unit: DistillationUnit, rows: list[dict], usage: Usage, **counts) -> int:
    """Insert up to the unit's remaining room, record counters and usage; returns how many were created."""
    with transaction.atomic():
        ctx.locked_unit(unit.pk)  # the lock also serializes this unit's concurrent batches
        mine = Question.objects.filter(run_id=ctx.run_id, intent_id=unit.node_id)
        before = after = mine.count()
        rest = rows
        while rest and after < unit.target:
            chunk, rest = rest[: unit.target - after], rest[unit.target - after:]
            result = question_bulk_create(topic=ctx.topic, rows=chunk)
            counts["duplicates_dropped"] = counts.get("duplicates_dropped", 0) + result.duplicates
            after = mine.count()
        created = after - before
        DistillationUnit.objects.filter(pk=unit.pk).update(produced=after)
        ctx.record(usage, unit.pk, questions_created=created, **counts)
    return created
