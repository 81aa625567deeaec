"""One question unit: N questions for one intent, asked in concurrent batches, topped up in rounds.

Idempotent: the unit counts the questions this run already holds for the intent before each
write, in the same transaction that inserts, and inserts only up to its target. Exact
duplicates are refused by the topic-wide text hash; near duplicates by n-gram similarity.
"""

import hashlib
import math
import random
from functools import partial

from django.db import transaction
from django.db.models import Count

from datasets.models import Question
from datasets.normalize import text_hash
from datasets.services import question_bulk_create
from distiller import prompts
from distiller.dedup import NearDuplicateIndex
from distiller.llm import LLMTruncatedError, Usage
from distiller.mix import mix_draw
from distiller.models import DistillationUnit
from distiller.services.runs import ASK_MARGIN, language_quotas, run_languages

MAX_ROUNDS = 4
MAX_TEXT_LENGTH = 2000
EXISTING_IN_PROMPT = 30  # enough to steer away from repeats without bloating every call
NEIGHBOURS_IN_PROMPT = 30
OUT_OF_SCOPE_NAME = "Out of scope"


def _rng(*parts) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:8], "big"))


def unit_questions(ctx, unit: DistillationUnit):
    """The questions a unit has written: its intent's plain ones, its hard negatives against its neighbour,
    or the run's out-of-scope ones."""
    mine = Question.objects.filter(run_id=ctx.run_id, intent_id=unit.node_id)
    if unit.kind == DistillationUnit.Kind.CONTRAST:
        return mine.filter(contrastive_of_id=unit.neighbour_id)
    return mine.filter(contrastive_of__isnull=True)


def _out_of_scope_intent(ctx, unit: DistillationUnit):
    """The topic's out-of-scope intent (created, as "Out of scope", when it has none), set as the unit's node."""
    from datasets.models import IntentNode
    from datasets.services import DatasetError, intent_create

    intent = IntentNode.objects.filter(topic=ctx.topic, out_of_scope=True).order_by("sort_key").first()
    if intent is None:
        try:
            intent = intent_create(topic=ctx.topic, name=OUT_OF_SCOPE_NAME, run_id=ctx.run_id,
                                   description="Questions near the topic that belong to none of its intents.")
        except DatasetError:  # a root of that name exists, not marked: mark it
            intent = IntentNode.objects.get(topic=ctx.topic, parent=None, name__iexact=OUT_OF_SCOPE_NAME)
        IntentNode.objects.filter(pk=intent.pk).update(out_of_scope=True)
    DistillationUnit.objects.filter(pk=unit.pk).update(node=intent)
    unit.node, unit.node_id = intent, intent.pk
    return intent


def question_unit_run(ctx, unit: DistillationUnit) -> tuple[bool, str]:
    """Bring the unit's questions (plain, hard negatives or out-of-scope) up to `unit.target`. Returns (failed, error)."""
    from datasets.models import IntentNode
    from distiller.selectors import intent_brief, intent_neighbours

    p = ctx.parameters
    if unit.kind == DistillationUnit.Kind.OUT_OF_SCOPE:
        intent = _out_of_scope_intent(ctx, unit)
        neighbours = [intent_brief(node) for node in IntentNode.objects.filter(
            topic=ctx.topic, out_of_scope=False, children__isnull=True).order_by("sort_key")[:NEIGHBOURS_IN_PROMPT]]
        contrast = None
    else:
        intent = unit.node
        neighbours = [intent_brief(node) for node in intent_neighbours(intent=intent)][:NEIGHBOURS_IN_PROMPT]
        contrast = intent_brief(unit.neighbour) if unit.kind == DistillationUnit.Kind.CONTRAST else None
    prompt = {"path": [n.name for n in intent.ancestors()], "description": intent.description,
              "neighbours": neighbours, "contrast": contrast,
              "out_of_scope": unit.kind == DistillationUnit.Kind.OUT_OF_SCOPE}
    usage, errors = ctx.usage(unit), []
    # Each language its share of the unit; one language per call, so a prompt asks for one.
    quotas = language_quotas(run_languages(p), unit.target, _rng(p["seed"], unit.key, "languages"))
    for round_number in range(MAX_ROUNDS):
        ctx.check()
        have = dict(unit_questions(ctx, unit).values_list("language").annotate(n=Count("id")).order_by())
        needs = {language: quota - have.get(language, 0) for language, quota in quotas.items()}
        if all(need <= 0 for need in needs.values()):
            break
        existing = list(Question.objects.filter(intent=intent).order_by("id").values_list("text", flat=True))
        seen_hashes = {text_hash(text) for text in existing}
        similar = NearDuplicateIndex(p["near_duplicate_threshold"])
        for text in existing:
            similar.add(text, force=True)
        rng = _rng(p["seed"], unit.key, unit.attempts, round_number)
        batches, n = [], 0
        for language, need in needs.items():
            if need <= 0:
                continue
            ask = need + math.ceil(need * ASK_MARGIN)
            specs = [{"n": n + i, **mix_draw(p["mix"], rng)} for i in range(1, ask + 1)]
            n += ask
            batches += [(language, specs[i:i + p["questions_per_call"]])
                        for i in range(0, ask, p["questions_per_call"])]
        futures = {ctx.call_pool.submit(_ask, ctx, prompt, batch, existing[-EXISTING_IN_PROMPT:], usage,
                                        language): (language, batch)
                   for language, batch in batches}
        created: list[int] = []
        round_errors, fatal = ctx.collect(
            futures, partial(_write_answer, ctx, unit, intent.pk, usage, seen_hashes, similar, created),
            on_error=partial(_write, ctx, unit, [], usage))
        round_created = sum(created)
        if fatal is not None:
            _write(ctx, unit, [], usage)
            raise fatal
        errors = round_errors
        if round_created == 0 and round_errors:
            break  # every call of the round failed: more rounds would fail the same way
    have = unit_questions(ctx, unit).count()
    if have < unit.target and errors:
        return True, errors[-1]
    return False, ""


def _write_answer(ctx, unit, intent_id, usage, seen_hashes, similar, created: list[int], language_batch,
                  answer) -> None:
    """Screen one answer's questions and write those that pass; appends how many were written."""
    language, batch = language_batch
    answer, *made_by = answer if answer is not None else (None, None, None)
    rows, counts = _screen(ctx, intent_id, answer, batch, seen_hashes, similar,
                           contrastive_of=unit.neighbour_id, made_by=tuple(made_by), language=language)
    created.append(_write(ctx, unit, rows, usage, language=language, **counts))


def max_tokens_for(batch_size: int) -> int:
    """Room for `batch_size` questions: twice the usual length each, and the JSON around them."""
    return 200 + 2 * prompts.QUESTIONS.EST_TOKENS_OUT_PER_ITEM * batch_size * 2


def _ask(ctx, prompt: dict, batch, existing, usage, language: str):
    """(answer, provider, model) of one batch, asked in `language`; a batch cut off at max_tokens is
    asked again in two halves (one answer back). None when the run stopped."""
    if ctx.stop.is_set():
        return None
    p = ctx.parameters
    messages = prompts.QUESTIONS.messages(
        topic=ctx.topic.name, topic_description=ctx.topic.description, intent_path=prompt["path"],
        description=prompt["description"], language=language, items=batch, existing=existing,
        neighbours=prompt["neighbours"], contrast=prompt["contrast"], out_of_scope=prompt["out_of_scope"])
    try:
        return ctx.client.complete_json_sourced(
            messages=messages, schema=prompts.QUESTIONS.Answer, schema_name="questions", temperature=p["temperature"],
            usage=usage, example=prompts.QUESTIONS.EXAMPLE, max_tokens=max_tokens_for(len(batch)),
            split_truncated=len(batch) > 1)
    except LLMTruncatedError:
        half = len(batch) // 2
        parts = [_ask(ctx, prompt, batch[:half], existing, usage, language),
                 _ask(ctx, prompt, batch[half:], existing, usage, language)]
        if any(part is None for part in parts):
            return None
        # The halves' numbers are the batch's own, or restart at 1: _pair matches either (by position).
        # (In a pool the halves may come from two providers; the rows name the first.)
        return (prompts.QUESTIONS.Answer(questions=[item for part in parts for item in part[0].questions]),
                *parts[0][1:])


def _screen(ctx, intent_id: int, answer, batch, seen_hashes: set, similar: NearDuplicateIndex,
            contrastive_of: int | None = None, made_by: tuple = (), language: str = "") -> tuple[list[dict], dict]:
    """Rows worth inserting from one answer (made by `made_by`: provider name and model, asked in
    `language`), and what was dropped and why."""
    counts = {"duplicates_dropped": 0, "near_duplicates_dropped": 0, "invalid_dropped": 0}
    if answer is None:
        return [], counts
    p = ctx.parameters
    provider, model = made_by if made_by and made_by[0] else (ctx.provider.name, ctx.model())
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
            "intent_id": intent_id, "text": text, "language": language or p["language"],
            "source": Question.Source.GENERATED, "run_id": ctx.run_id, "provider": provider,
            "model": model, "temperature": p["temperature"], "prompt_version": prompts.QUESTIONS.VERSION,
            "style": spec["style"], "complexity": spec["complexity"], "audience": spec["audience"],
            "edge_case": "" if spec["edge_case"] == "none" else spec["edge_case"],
            "contrastive_of_id": contrastive_of,
        })
    return rows, counts


def _pair(batch: list[dict], items: list) -> list[tuple[dict | None, object]]:
    """Each answered item with the requested spec it answers (None: an item beyond the batch).

    By `n`; but some models number every batch from 1 whatever we asked, or repeat a number, so
    when the numbers are not each a requested one, once, by position.
    """
    specs = {spec["n"]: spec for spec in batch}
    numbers = [item.n for item in items]
    if not set(numbers) <= set(specs) or len(set(numbers)) != len(numbers):
        return [(batch[i] if i < len(batch) else None, item) for i, item in enumerate(items)]
    return [(specs[item.n], item) for item in items]


def _write(ctx, unit: DistillationUnit, rows: list[dict], usage: Usage, language: str = "", **counts) -> int:
    """Insert up to the unit's remaining room (and the room of `language`'s quota, for the rows of
    one call), record counters and usage; returns how many were created."""
    with transaction.atomic():
        ctx.locked_unit(unit.pk)  # the lock also serializes this unit's concurrent batches
        mine = unit_questions(ctx, unit)
        before = after = mine.count()
        room = unit.target - after
        if rows and language:
            p = ctx.parameters
            quotas = language_quotas(run_languages(p), unit.target, _rng(p["seed"], unit.key, "languages"))
            room = min(room, quotas.get(language, 0) - mine.filter(language=language).count())
        rest = rows
        while rest and room > 0:
            chunk, rest = rest[:room], rest[room:]
            result = question_bulk_create(topic=ctx.topic, rows=chunk)
            counts["duplicates_dropped"] = counts.get("duplicates_dropped", 0) + result.duplicates
            now = mine.count()
            room -= now - after
            after = now
        created = after - before
        DistillationUnit.objects.filter(pk=unit.pk).update(produced=after)
        subset = {DistillationUnit.Kind.CONTRAST: "hard_negatives_created",
                  DistillationUnit.Kind.OUT_OF_SCOPE: "out_of_scope_created"}.get(unit.kind)
        if subset:
            counts[subset] = created
        ctx.record(usage, unit.pk, questions_created=created, **counts)
    return created
