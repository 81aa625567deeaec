"""One judge unit: the LLM judge's verdict on one intent's questions, and what the run does below its threshold.

The judge sees each question with its intent and the intent's neighbours (names and
descriptions) and answers which of them it belongs to (or none), a naturalness from 1 to 5 and
a reason. Score: (naturalness - 1) / 4 when it chose the question's own intent, else 0. Below the
run's threshold, `judge_action` decides: "mark" (the verdict only), "reject" (status rejected,
the reason kept) or "refine" (the teacher rewrites it with the judge's reason, then it is judged
again, up to `judge_refine_rounds` times; still failing, it stays marked).

Idempotent: a verdict is written only on a question without one (a conditional UPDATE), the
run's first-verdict counters only for questions never judged before (blank judge_model), and
the refinement rounds done are the unit's `produced`: a unit that runs again (its worker died)
judges only what is left and counts nothing twice.
"""

import math

from django.db import IntegrityError, transaction
from django.db.models import Q

from datasets.models import Question
from distiller import prompts
from distiller.llm import Usage
from distiller.models import DistillationRun, DistillationUnit
from distiller.selectors import intent_brief, intent_neighbours
from distiller.services.runs import run_languages

MAX_JUDGE_ROUNDS = 3  # rounds of asking again for questions an answer left out
V = Question.JudgeVerdict


def judge_targets(ctx, unit: DistillationUnit):
    """The questions this unit judges: the run's own (of the unit's intent), or, for a judge run, all of the intent's."""
    questions = Question.objects.filter(intent_id=unit.node_id)
    if ctx.run_kind != DistillationRun.Kind.JUDGE:
        questions = questions.filter(run_id=ctx.run_id)
    return questions.exclude(status=Question.Status.REJECTED)


def judge_unit_run(ctx, unit: DistillationUnit) -> tuple[bool, str]:
    """Judge the unit's questions, then refine or reject those below the threshold. Returns (failed, error)."""
    p, intent = ctx.parameters, unit.node
    neighbours = intent_neighbours(intent=intent)
    candidates = [intent_brief(intent)] + [intent_brief(node) for node in neighbours]
    by_name = {c["name"].casefold(): node.pk for c, node in zip(candidates, [intent, *neighbours], strict=True)}
    errors: list[str] = []
    refine_rounds = p["judge_refine_rounds"] if p["judge_action"] == "refine" else 0
    while True:
        errors = _judge_pending(ctx, unit, intent, candidates, by_name)
        if errors:
            return True, errors[-1]
        unit.refresh_from_db(fields=["produced"])
        # Only questions nobody reviewed yet are rewritten (a judge run also sees approved ones).
        failing = list(judge_targets(ctx, unit).filter(status=Question.Status.PENDING, judge_verdict__in=[
            V.OTHER_INTENT, V.NO_INTENT, V.LOW_SCORE]).order_by("id"))
        if not failing or unit.produced >= refine_rounds:
            break
        _refine(ctx, unit, intent, candidates[1:], failing)
    if p["judge_action"] == "reject":
        _reject_failing(ctx, unit)
    return False, ""


def _judge_pending(ctx, unit, intent, candidates, by_name) -> list[str]:
    """Ask the judge about every target without a verdict, in concurrent batches; the last errors if some stay unjudged."""
    p, errors = ctx.parameters, []
    usage = ctx.usage(unit)
    for _ in range(MAX_JUDGE_ROUNDS):
        ctx.check()
        pending = list(judge_targets(ctx, unit).filter(judge_verdict="").order_by("id").values_list(
            "id", "text", "language"))
        if not pending:
            return []
        size = p["judge_batch"]
        # A batch per language, so the judge rates naturalness as a user of that language would write.
        by_language: dict[str, list[tuple[int, str]]] = {}
        for pk, text, language in pending:
            by_language.setdefault(language or p["language"], []).append((pk, text))
        batches = [(language, group[i:i + size]) for language, group in by_language.items()
                   for i in range(0, len(group), size)]
        futures = {ctx.call_pool.submit(_ask_judge, ctx, intent, candidates, batch, usage, language): batch
                   for language, batch in batches}
        errors, fatal = ctx.collect(
            futures,
            on_answer=lambda batch, answer: _write_verdicts(ctx, unit, _verdicts(ctx, intent, by_name, batch, answer),
                                                            usage),
            on_error=lambda: _write_verdicts(ctx, unit, [], usage))
        if fatal is not None:
            _write_verdicts(ctx, unit, [], usage)
            raise fatal
    left = judge_targets(ctx, unit).filter(judge_verdict="").count()
    if not left:
        return []
    return errors or [f"the judge left {left} question(s) unanswered {MAX_JUDGE_ROUNDS} times"]


def _ask_judge(ctx, intent, candidates, batch, usage, language):
    if ctx.stop.is_set():
        return None
    messages = prompts.JUDGE.messages(
        topic=ctx.topic.name, topic_description=ctx.topic.description, language=language,
        intent=candidates[0]["name"], candidates=candidates,
        questions=[{"n": n, "text": text} for n, (_, text) in enumerate(batch, start=1)])
    return ctx.judge_client.complete_json(
        messages=messages, schema=prompts.JUDGE.Answer, schema_name="judge", temperature=0.0, usage=usage,
        example=prompts.JUDGE.EXAMPLE, max_tokens=200 + 2 * prompts.JUDGE.EST_TOKENS_OUT_PER_ITEM * len(batch))


def verdict_of(*, intent_id: int, chosen_id: int | None, naturalness: int, threshold: float) -> tuple[str, float]:
    """The verdict and score of one judge answer: another intent or none fails whatever the naturalness."""
    if chosen_id != intent_id:
        return (V.NO_INTENT if chosen_id is None else V.OTHER_INTENT), 0.0
    score = (min(5, max(1, naturalness)) - 1) / 4
    return (V.PASS if score >= threshold else V.LOW_SCORE), score


def _verdicts(ctx, intent, by_name, batch, answer) -> list[dict]:
    """One update per question the answer judged (by number; by position when the numbers are not ours)."""
    if answer is None:
        return []
    items = answer.verdicts
    numbers = [item.n for item in items]
    if set(numbers) - set(range(1, len(batch) + 1)) or len(set(numbers)) != len(numbers):
        pairs = list(zip(batch, items, strict=False))
    else:
        pairs = [(batch[item.n - 1], item) for item in items]
    model = ctx.judge_client.served_model()
    rows = []
    for (question_id, _), item in pairs:
        name = " ".join(item.intent.split()).casefold()
        if name != prompts.JUDGE.NONE and name not in by_name:
            continue  # a name we did not offer: asked again next round
        chosen = None if name == prompts.JUDGE.NONE else by_name[name]
        verdict, score = verdict_of(intent_id=intent.pk, chosen_id=chosen, naturalness=item.naturalness,
                                    threshold=ctx.parameters["judge_threshold"])
        rows.append({"id": question_id, "judge_verdict": verdict, "judge_score": score, "judge_intent_id": chosen,
                     "judge_disagrees": chosen != intent.pk, "judge_reason": " ".join(item.reason.split())[:1000],
                     "judge_model": model, "judge_prompt_version": prompts.JUDGE.VERSION})
    return rows


def _write_verdicts(ctx, unit, rows: list[dict], usage: Usage) -> None:
    """Store verdicts on questions still without one; count first verdicts on the run."""
    counts = {"questions_judged": 0, "judge_disagreed": 0, "judge_low_score": 0}
    with transaction.atomic():
        ctx.locked_unit(unit.pk)
        for row in rows:
            fields = {k: v for k, v in row.items() if k != "id"}
            first = Question.objects.filter(pk=row["id"], judge_verdict="", judge_model="").update(**fields)
            if not first:
                Question.objects.filter(pk=row["id"], judge_verdict="").update(**fields)
                continue
            counts["questions_judged"] += 1
            counts["judge_disagreed"] += int(row["judge_disagrees"])
            counts["judge_low_score"] += int(row["judge_verdict"] == V.LOW_SCORE)
        ctx.record(usage, unit.pk, provider=ctx.judge_provider, **counts)


def _refine(ctx, unit, intent, neighbours: list[dict], failing: list[Question]) -> None:
    """One refinement round: the teacher rewrites the failing questions with the judge's reasons; they are judged again."""
    p = ctx.parameters
    usage = ctx.usage(unit)
    path = [n.name for n in intent.ancestors()]
    size = p["questions_per_call"]
    # A run in several languages rewrites each question in its own: one language per call.
    several = len(run_languages(p)) > 1
    by_language: dict[str, list[Question]] = {}
    for question in failing:
        by_language.setdefault(question.language if several else p["language"], []).append(question)
    batches = [(language, group[i:i + size]) for language, group in by_language.items()
               for i in range(0, len(group), size)]

    def ask(language, batch):
        if ctx.stop.is_set():
            return None
        items = [{"n": n, "text": q.text, "reason": q.judge_reason} for n, q in enumerate(batch, start=1)]
        messages = prompts.REFINE.messages(topic=ctx.topic.name, intent_path=path, description=intent.description,
                                          language=language, neighbours=neighbours, items=items)
        return ctx.client.complete_json(messages=messages, schema=prompts.REFINE.Answer, schema_name="refine",
                                        temperature=p["temperature"], usage=usage, example=prompts.REFINE.EXAMPLE,
                                        max_tokens=200 + 2 * prompts.REFINE.EST_TOKENS_OUT_PER_ITEM * len(batch))

    rewrites = {}

    def keep_rewrites(batch, answer):
        for item in (answer.questions if answer else []):
            text = " ".join(item.text.split())
            if 1 <= item.n <= len(batch) and text:
                rewrites[batch[item.n - 1].pk] = text

    errors, fatal = ctx.collect({ctx.call_pool.submit(ask, language, batch): batch for language, batch in batches},
                                keep_rewrites)
    with transaction.atomic():
        locked = ctx.locked_unit(unit.pk)
        refined = 0
        if fatal is None:
            for question in failing:
                text = rewrites.get(question.pk)
                if not text or text == question.text:
                    continue
                question.text, question.judge_verdict, question.judge_disagrees = text, "", None
                try:
                    with transaction.atomic():
                        question.save(update_fields=["text", "judge_verdict", "judge_disagrees", "updated_at"])
                except IntegrityError:  # the rewrite is another question of the topic, word for word
                    continue
                refined += 1
            # A round whose calls all failed still counts: refining is bounded, not retried for ever.
            locked.produced += 1
            locked.save(update_fields=["produced", "updated_at"])
        ctx.record(usage, unit.pk, questions_refined=refined)
    if fatal is not None:
        raise fatal


def _reject_failing(ctx, unit) -> None:
    with transaction.atomic():
        ctx.locked_unit(unit.pk)
        rejected = judge_targets(ctx, unit).filter(
            Q(status=Question.Status.PENDING),
            judge_verdict__in=[V.OTHER_INTENT, V.NO_INTENT, V.LOW_SCORE]).update(status=Question.Status.REJECTED)
        if rejected:
            from django.db.models import F

            DistillationRun.objects.filter(pk=ctx.run_id).update(questions_rejected=F("questions_rejected") + rejected)


def judge_calls_estimate(questions: int, batch: int) -> int:
    return math.ceil(questions / batch) if questions else 0
