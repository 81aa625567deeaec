"""Runs: start, estimate, cancel, resume, and how a run's units are planned and ended.

A run starts with one unit (the topic's first level, or the questions of existing intents).
When a taxonomy unit finishes, the units its new intents need are planned in the same
transaction: their children (down to `levels`) and, for leaves, their questions. Work flows
down the tree without level-wide barriers. The run ends when no unit is open.
"""

import math
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q
from django.db.models.functions import Now
from django.utils import timezone

from config.input import MAX_ID
from config.queues import enqueue
from datasets.models import IntentNode, Topic
from datasets.selectors import intent_subtree_ids
from datasets.services import DatasetError
from distiller import prompts
from distiller.dedup import DEFAULT_THRESHOLD
from distiller.mix import mix_validate
from distiller.models import DistillationRun, DistillationUnit, LLMProvider, key_variable_problem
from distiller.ratelimit import REDIS_DOWN_ERRORS
from distiller.selectors import QUEUE, distill_worker_count, run_has_live_lease, run_jobs_lost  # noqa: F401 (re-exported)

QUESTIONS_STAGE = "questions"
CONTRAST_STAGE = "hard_negatives"
OUT_OF_SCOPE_STAGE = "out_of_scope"
JUDGE_STAGE = "judge"
DONE_STAGE = "done"
# An ended run's stage says how it ended, not the level it was at (resume puts the frontier back).
FAILED_STAGE = "failed"
CANCELLED_STAGE = "cancelled"
# Ask for a little more than needed: some answers are dropped as duplicates, and one more round
# costs a whole call latency.
ASK_MARGIN = 0.1


class RunError(DatasetError):
    """A user-facing error about runs (mapped by the API's one exception handler)."""


def provider_resolve(name_or_id=None) -> LLMProvider:
    """The provider by id, name or kind (case-insensitive); the default one when not given."""
    from django.conf import settings

    wanted = name_or_id or settings.LLM_DEFAULT_PROVIDER
    active = LLMProvider.objects.filter(is_active=True)
    if not wanted:
        provider = active.filter(kind=LLMProvider.Kind.CUSTOM).first() or active.first()
        if provider is None:
            raise RunError("No active LLM provider; add one in the admin.", code="not_found")
        return provider
    if isinstance(wanted, LLMProvider):
        return wanted
    query = Q(name__iexact=str(wanted)) | Q(kind__iexact=str(wanted))
    if str(wanted).isascii() and str(wanted).isdigit() and int(wanted) <= MAX_ID:  # not "²" nor "١"
        query |= Q(pk=int(wanted))
    provider = active.filter(query).order_by("pk").first()
    if provider is None:
        names = ", ".join(active.values_list("name", flat=True))
        raise RunError(f"Unknown or inactive provider {wanted!r}; choose one of: {names}.", code="not_found")
    return provider


def topic_name_clean(name: str) -> str:
    """A topic name as a user typed it, stripped; RunError when it is empty, too long or holds control characters."""
    name = (name or "").strip()
    limit = Topic._meta.get_field("name").max_length
    if not name:
        raise RunError("The topic name is empty: give the topic a name.")
    if len(name) > limit:
        raise RunError(f"The topic name is {len(name):,} characters long; at most {limit} are allowed.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise RunError("The topic name holds control characters (a NUL, a tab or a line break); remove them.")
    return name


def run_parameters(*, topic: Topic, kind: str, **given) -> dict:
    """Complete and check a run's parameters, taking defaults from the topic. Raises RunError."""
    if kind not in DistillationRun.Kind.values:
        raise RunError(f"Unknown run kind {kind!r}; use auto, taxonomy or questions.")
    p = {
        "levels": topic.levels, "tags_per_level": topic.tags_per_level,
        "questions_per_intent": topic.questions_per_intent, "language": topic.language,
        "leaf_only": topic.leaf_only, "questions_per_call": 10, "temperature": 0.9, "seed": 0,
        "near_duplicate_threshold": DEFAULT_THRESHOLD, "parent_id": None, "intent_id": None, "mix": None,
        # The judge (blank: none): a provider's id, name or kind; what to do below judge_threshold.
        "judge": "", "judge_threshold": 0.5, "judge_action": "mark", "judge_refine_rounds": 2, "judge_batch": 10,
        "hard_negatives": 0, "out_of_scope": 0,
        # A teacher pool: [{"provider": name, "weight": w}, ...] (empty: the run's provider alone).
        "pool": [],
        # The languages its questions are written in, spread evenly over each intent (see
        # language_quotas); `language` stays the language of the taxonomy's intent names.
        "languages": None,
    }
    unknown = set(given) - set(p)
    if unknown:
        raise RunError(f"Unknown parameters: {', '.join(sorted(unknown))}.")
    p.update({k: v for k, v in given.items() if v is not None})
    if p["mix"] is None and topic.preset_id is not None:  # the topic's domain preset: its styles and audiences
        p["mix"] = topic.preset.mix
    limits = {"levels": (1, 6), "tags_per_level": (1, 50), "questions_per_intent": (1, 10000),
              "questions_per_call": (1, 50), "seed": (0, 2**31), "judge_refine_rounds": (1, 5),
              "judge_batch": (1, 50), "hard_negatives": (0, 1000), "out_of_scope": (0, 10000)}
    for name, (low, high) in limits.items():
        try:
            p[name] = int(p[name])
        except (TypeError, ValueError):
            raise RunError(f"{name} must be a whole number.") from None
        if not low <= p[name] <= high:
            raise RunError(f"{name} must be between {low} and {high}.")
    for name, (low, high) in {"temperature": (0.0, 2.0), "near_duplicate_threshold": (0.3, 1.0),
                              "judge_threshold": (0.0, 1.0)}.items():
        try:
            p[name] = float(p[name])
        except (TypeError, ValueError):
            raise RunError(f"{name} must be a number.") from None
        if not low <= p[name] <= high:
            raise RunError(f"{name} must be between {low} and {high}.")
    if p["language"] not in prompts.LANGUAGE_NAMES:
        raise RunError(f"Unsupported language {p['language']!r}; use one of {', '.join(prompts.LANGUAGE_NAMES)}.")
    if p["languages"] in (None, "", []):
        # An explicit `language` alone keeps a one-language run; otherwise the preset's languages.
        p["languages"] = topic.preset.languages if given.get("language") is None and topic.preset_id is not None \
            else [p["language"]]
    p["languages"] = languages_clean(p["languages"])
    # A judge run judges the questions of every intent, wherever they sit in the tree.
    p["leaf_only"] = bool(p["leaf_only"]) and kind != DistillationRun.Kind.JUDGE
    if p["judge_action"] not in JUDGE_ACTIONS:
        raise RunError(f"judge_action must be one of {', '.join(JUDGE_ACTIONS)}, not {p['judge_action']!r}.")
    p["judge"] = provider_resolve(p["judge"]).name if p["judge"] else ""  # RunError naming the providers
    p["pool"] = pool_clean(p["pool"])
    if kind == DistillationRun.Kind.JUDGE and not p["judge"]:
        raise RunError("A judge run needs a judge: name a provider (--judge).")
    if kind in (DistillationRun.Kind.TAXONOMY, DistillationRun.Kind.JUDGE) and (p["hard_negatives"] or p["out_of_scope"]):
        raise RunError(f"hard_negatives and out_of_scope are for runs that write questions, not {kind} runs.")
    try:
        p["mix"] = mix_validate(p["mix"])
    except ValueError as exc:
        raise RunError(str(exc)) from None
    for name in ("parent_id", "intent_id"):
        if p[name] is not None and not IntentNode.objects.filter(pk=p[name], topic=topic).exists():
            raise RunError(f"{name} {p[name]} is not an intent of {topic.name}.", code="not_found")
    if kind == DistillationRun.Kind.QUESTIONS and not _question_targets(topic, p, created=None):
        raise RunError(f"{topic.name} has no intents to write questions for; distil a taxonomy first.")
    if kind == DistillationRun.Kind.JUDGE and topic.pk and not _questions_to_judge(topic, p):
        raise RunError(f"{topic.name} has no questions without a verdict to judge"
                       + (" under that intent." if p["intent_id"] else "."))
    if p["hard_negatives"]:
        _hard_negatives_check(topic, kind, p)
    return p


JUDGE_ACTIONS = ("mark", "reject", "refine")


def languages_clean(languages) -> list[str]:
    """A run's question languages as stored: known codes, each once, in the order given ("en,es" or
    ["en", "es"]); RunError naming an unknown code."""
    if isinstance(languages, str):
        languages = languages.split(",")
    if not isinstance(languages, list | tuple) or not all(isinstance(code, str) for code in languages):
        raise RunError('languages must be a list of language codes, e.g. ["en", "es"].')
    codes = list(dict.fromkeys(code.strip() for code in languages if code.strip()))
    if not codes:
        raise RunError('languages is empty: give at least one language code, e.g. ["en"].')
    for code in codes:
        if code not in prompts.LANGUAGE_NAMES:
            raise RunError(f"Unsupported language {code!r} in languages; use one of "
                           f"{', '.join(prompts.LANGUAGE_NAMES)}.")
    return codes


def run_languages(parameters: dict) -> list[str]:
    """The languages a run writes questions in (runs started before `languages`: their `language`)."""
    return parameters.get("languages") or [parameters["language"]]


def language_quotas(languages: list[str], target: int, rng) -> dict[str, int]:
    """How many of a unit's `target` questions each language gets: an even share, and the
    remainder one each to languages drawn by the unit's seeded `rng` (so over many intents no
    language is always the one short). The counts add up to `target` exactly."""
    share, rest = divmod(target, len(languages))
    extra = set(rng.sample(range(len(languages)), rest)) if len(languages) > 1 else set(range(rest))
    return {code: share + (i in extra) for i, code in enumerate(languages)}


def pool_clean(pool) -> list[dict]:
    """A teacher pool as stored: [{"provider": name, "weight": float}]; RunError naming what is wrong."""
    if not pool:
        return []
    if not isinstance(pool, list | tuple) or not all(isinstance(m, dict) for m in pool):
        raise RunError('pool must be a list like [{"provider": "deepseek", "weight": 3}, {"provider": "openrouter", '
                       '"weight": 1}].')
    members, seen = [], set()
    for member in pool:
        unknown = set(member) - {"provider", "weight"}
        if unknown or "provider" not in member:
            raise RunError(f"A pool member has a provider and a weight; got {sorted(member)}.")
        weight = member.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight != weight or weight < 0 \
                or weight > 1_000_000:
            raise RunError(f"The weight of {member['provider']!r} in the pool must be a number from 0 up; "
                           f"got {weight!r}.")
        provider = provider_resolve(member["provider"])
        if provider.pk in seen:
            raise RunError(f"{provider.name} is in the pool twice.")
        seen.add(provider.pk)
        members.append({"provider": provider.name, "weight": float(weight)})
    if not sum(m["weight"] for m in members) > 0:
        raise RunError("The pool's weights sum to 0: give at least one provider a weight above 0.")
    return members


def _hard_negatives_check(topic: Topic, kind: str, p: dict) -> None:
    """Hard negatives need neighbours: refuse a run whose intents would have none."""
    from distiller.selectors import intent_neighbours

    if kind == DistillationRun.Kind.AUTO:
        if p["tags_per_level"] < 2:
            raise RunError("hard_negatives need neighbouring intents: with 1 tag per level no intent has a sibling; "
                           "ask for at least 2 tags per level.")
        return
    targets = IntentNode.objects.filter(pk__in=_question_targets(topic, p, created=None))
    if not any(intent_neighbours(intent=node) for node in targets[:200]):
        names = ", ".join(node.name for node in targets[:3])
        raise RunError(f"hard_negatives need neighbouring intents, and {names} ha{'s' if len(targets) == 1 else 've'} "
                       "none (no siblings, no confusions in an evaluation); write questions without hard negatives.")


# --- Stages and their units --------------------------------------------------------------------


def _question_targets(topic: Topic, p: dict, created: list[int] | None) -> list[int]:
    """Intent ids that get questions: the nodes given, or the topic's (or a subtree's) intents."""
    nodes = IntentNode.objects.filter(topic=topic)
    if created is not None:
        nodes = nodes.filter(pk__in=created)
    elif p.get("intent_id"):
        nodes = nodes.filter(pk__in=intent_subtree_ids(node=IntentNode.objects.get(pk=p["intent_id"])))
    if p["leaf_only"]:
        nodes = nodes.annotate(n_children=Count("children")).filter(n_children=0)
    return list(nodes.order_by("sort_key").values_list("pk", flat=True))


def _taxonomy_unit(run, parent_id: int | None, level: int) -> DistillationUnit:
    return DistillationUnit(run=run, kind=DistillationUnit.Kind.TAXONOMY, stage=f"taxonomy:{level}",
                            node_id=parent_id, key=f"taxonomy:{parent_id or 'root'}",
                            target=run.parameters["tags_per_level"])


def _question_units(run, intent_ids: list[int]) -> list[DistillationUnit]:
    return [DistillationUnit(run=run, kind=DistillationUnit.Kind.QUESTIONS, stage=QUESTIONS_STAGE, node_id=pk,
                             key=f"questions:{pk}", target=run.parameters["questions_per_intent"])
            for pk in intent_ids]


def _judge_unit(run, intent_id: int) -> DistillationUnit:
    # target: the refinement rounds allowed; produced: those done (see distiller.services.judge).
    return DistillationUnit(run=run, kind=DistillationUnit.Kind.JUDGE, stage=JUDGE_STAGE, node_id=intent_id,
                            key=f"judge:{intent_id}", target=run.parameters["judge_refine_rounds"]
                            if run.parameters["judge_action"] == "refine" else 0)


def _contrast_units(run, intent_id: int) -> list[DistillationUnit]:
    from distiller.selectors import intent_neighbours

    intent = IntentNode.objects.get(pk=intent_id)
    return [DistillationUnit(run=run, kind=DistillationUnit.Kind.CONTRAST, stage=CONTRAST_STAGE, node_id=intent_id,
                             neighbour_id=other.pk, key=f"contrast:{intent_id}:{other.pk}",
                             target=run.parameters["hard_negatives"])
            for other in intent_neighbours(intent=intent)]


def _out_of_scope_unit(run) -> DistillationUnit:
    return DistillationUnit(run=run, kind=DistillationUnit.Kind.OUT_OF_SCOPE, stage=OUT_OF_SCOPE_STAGE,
                            key="out_of_scope", target=run.parameters["out_of_scope"])


def _plan_first(run: DistillationRun) -> list[DistillationUnit]:
    p = run.parameters
    if run.kind == DistillationRun.Kind.JUDGE:
        return [_judge_unit(run, pk) for pk in sorted(_questions_to_judge(run.topic, p))]
    if run.kind == DistillationRun.Kind.QUESTIONS:
        units = _question_units(run, _question_targets(run.topic, p, created=None))
        return units + ([_out_of_scope_unit(run)] if p["out_of_scope"] else [])
    return [_taxonomy_unit(run, p["parent_id"], 1)]


def _plan_after_questions(run: DistillationRun, unit: DistillationUnit) -> list[DistillationUnit]:
    """An intent's questions are written: its hard negatives next; once those are too, its judge."""
    p = run.parameters
    planned = []
    if unit.kind == DistillationUnit.Kind.OUT_OF_SCOPE:
        return []  # no intent's neighbours to judge them against
    if unit.kind == DistillationUnit.Kind.QUESTIONS and p["hard_negatives"]:
        planned = _contrast_units(run, unit.node_id)
        DistillationUnit.objects.bulk_create(planned, ignore_conflicts=True)
    if p["judge"]:
        still_open = DistillationUnit.objects.filter(
            run=run, node_id=unit.node_id, kind__in=[DistillationUnit.Kind.QUESTIONS, DistillationUnit.Kind.CONTRAST],
            status__in=[DistillationUnit.Status.PENDING, DistillationUnit.Status.RUNNING]).exists()
        if not still_open:
            judge = [_judge_unit(run, unit.node_id)]
            DistillationUnit.objects.bulk_create(judge, ignore_conflicts=True)
            planned += judge
    return planned


def units_frontier(*, run_id: int) -> str:
    """The stage of the run's shallowest open unit ('' when none is open): taxonomy levels, then questions."""
    return (DistillationUnit.objects.filter(run_id=run_id, status__in=[
        DistillationUnit.Status.PENDING, DistillationUnit.Status.RUNNING]).order_by("-kind", "stage")
        .values_list("stage", flat=True).first()) or ""


def units_plan_after(*, run: DistillationRun, unit: DistillationUnit) -> int:
    """Queue what the intents of a finished taxonomy unit need next; returns how many units.

    Called in the transaction that marks the unit done, so work flows down the tree without
    waiting for the rest of the level: a leaf's questions start as soon as the leaf exists.
    Idempotent (one unit per run and key).
    """
    p = run.parameters
    if unit.kind in (DistillationUnit.Kind.QUESTIONS, DistillationUnit.Kind.CONTRAST,
                     DistillationUnit.Kind.OUT_OF_SCOPE):
        return len(_plan_after_questions(run, unit))
    if unit.kind != DistillationUnit.Kind.TAXONOMY:
        return 0
    level = int(unit.stage.split(":")[1])
    created = list(unit.created_ids)
    planned = [_taxonomy_unit(run, pk, level + 1) for pk in created] if level < p["levels"] else []
    if run.kind == DistillationRun.Kind.AUTO:
        if not p["leaf_only"]:
            targets = created
        elif level == p["levels"]:
            targets = created
        else:
            targets = []
        if p["leaf_only"] and not created and unit.node_id:
            targets = [unit.node_id]  # it got no children after all: it is a leaf
        planned += _question_units(run, targets)
        taxonomy_open = DistillationUnit.objects.filter(
            run=run, kind=DistillationUnit.Kind.TAXONOMY,
            status__in=[DistillationUnit.Status.PENDING, DistillationUnit.Status.RUNNING]).exists()
        if p["out_of_scope"] and not taxonomy_open and not any(
                u.kind == DistillationUnit.Kind.TAXONOMY for u in planned):
            # The taxonomy is complete: out-of-scope questions can be told from all of it.
            planned.append(_out_of_scope_unit(run))
    DistillationUnit.objects.bulk_create(planned, ignore_conflicts=True)
    return len(planned)


def llm_calls_lost_record() -> int:
    """Record, as `interrupted` LLMCall rows counted in their runs' calls, the calls whose process died
    before writing them (the provider limiter lists them once their owner's liveness key expired).

    Tokens are unknown: the answer, if any, went to a dead process. Returns how many were recorded.
    """
    import json

    from distiller.models import LLMCall
    from distiller.ratelimit import lost_calls_take

    calls = [json.loads(raw) for raw in lost_calls_take()]
    if not calls:
        return 0
    runs = dict(DistillationRun.objects.filter(pk__in={c["run"] for c in calls}).values_list("pk", "provider_id"))
    units = set(DistillationUnit.objects.filter(pk__in={c["unit"] for c in calls if c.get("unit")})
                .values_list("pk", flat=True))
    rows = [LLMCall(run_id=c["run"], unit_id=c.get("unit") if c.get("unit") in units else None,
                    provider_id=runs[c["run"]], model=c.get("model", ""), kind=c.get("kind", ""),
                    outcome=LLMCall.Outcome.INTERRUPTED, error_code="worker_died",
                    created_at=c.get("at") or timezone.now())
            for c in calls if c["run"] in runs]
    per_run: dict[int, int] = {}
    for row in rows:
        per_run[row.run_id] = per_run.get(row.run_id, 0) + 1
    with transaction.atomic():
        LLMCall.objects.bulk_create(rows)
        for run_id, count in per_run.items():
            DistillationRun.objects.filter(pk=run_id).update(calls=F("calls") + count)
    return len(rows)


def run_complete(*, run_id: int) -> bool:
    """End a running run whose units are all finished: succeeded, or failed naming its failed units.

    Safe to call from many workers at once (the run row is locked). Returns whether it ended the run.
    """
    llm_calls_lost_record()
    with transaction.atomic():
        run = DistillationRun.objects.select_for_update().select_related("topic").get(pk=run_id)
        if run.status != DistillationRun.Status.RUNNING:
            return False
        if run.units.filter(status__in=[DistillationUnit.Status.PENDING, DistillationUnit.Status.RUNNING]).exists():
            return False
        failed = run.units.filter(status=DistillationUnit.Status.FAILED)
        first = failed.select_related("node").first()
        if first is not None:
            where = first.node.intent_full_name if first.node else run.topic.name
            run.status, run.finished_at = DistillationRun.Status.FAILED, timezone.now()
            run.stage = FAILED_STAGE
            run.error = (f"{failed.count()} unit(s) failed; first, {first.kind} for {where}: {first.error} "
                         "Fix the cause and resume the run.")
            run.save(update_fields=["status", "stage", "finished_at", "error", "updated_at"])
            return True
        _finish(run)
        return True


def _finish(run: DistillationRun) -> None:
    # A judge unit's target is the refinement rounds it may take, not a shortfall when it needed fewer.
    short = (run.units.filter(produced__lt=F("target")).exclude(kind=DistillationUnit.Kind.JUDGE)
             .select_related("node", "neighbour"))
    warnings = [f"{u.node.intent_full_name if u.node else run.topic.name}: {u.produced} of {u.target} "
                + {"taxonomy": "intents", "contrast": f"hard negatives against {u.neighbour}"}.get(
                    u.kind, "questions")
                + (f" ({u.error})" if u.error else "")
                for u in short[:200]]
    if run.error:  # a work job failed (recorded by run_job_failed) but others finished the run
        warnings.append(f"recovered from: {run.error}")
    warnings += _pool_warnings(run) + _adaptation_warnings(run)
    run.status, run.stage, run.finished_at, run.warnings, run.error = (
        DistillationRun.Status.SUCCEEDED, DONE_STAGE, timezone.now(), warnings, "")
    run.units_done = run.units.filter(status=DistillationUnit.Status.DONE).count()
    run.units_total = run.units.count()
    run.questions_target = sum(run.units.filter(kind=DistillationUnit.Kind.QUESTIONS).values_list("target", flat=True))
    run.save(update_fields=["status", "stage", "finished_at", "warnings", "error", "units_done", "units_total",
                            "questions_target", "updated_at"])


def _pool_warnings(run: DistillationRun) -> list[str]:
    """Which pool members were refused (and so taken out) and who took over."""
    from distiller.models import LLMCall

    pool = run.parameters.get("pool") or []
    if len(pool) < 2:
        return []
    names = [m["provider"] for m in pool]
    refused = dict(LLMCall.objects.filter(run=run, outcome=LLMCall.Outcome.REFUSED, provider__name__in=names)
                   .values_list("provider__name", "error_code").order_by("id"))
    if not refused:
        return []
    served = set(LLMCall.objects.filter(run=run, outcome=LLMCall.Outcome.OK).values_list("provider__name", flat=True))
    rest = ", ".join(n for n in names if n not in refused and n in served) or "none"
    return [f"pool: {name} failed ({code}) and was taken out; {rest} took over." for name, code in refused.items()]


def _adaptation_warnings(run: DistillationRun) -> list[str]:
    """Which parameters the servers this run called refuse, and what its calls sent instead."""
    from distiller.models import LLMCall
    from distiller.services.providers import provider_adaptations_text

    called = LLMCall.objects.filter(run=run).values("provider_id").distinct()
    providers = LLMProvider.objects.filter(pk__in=called).exclude(request_adaptations={}).order_by("name")
    return [f"{p.name}: the server refuses some request parameters; calls adapted: {provider_adaptations_text(p)}."
            for p in providers]


def run_job_failed(*, run_id: int, job_id: str, error: str) -> None:
    """Record why a work job of a running run died (timeout, crash, abandoned) on the run and its units.

    The run keeps running: other jobs may finish it; if none is left it shows as stalled, and
    the error says why. Units the job still held go back to pending at once (no lease wait).
    """
    message = f"Work job {job_id} failed: {error}"[:2000]
    with transaction.atomic():
        DistillationUnit.objects.filter(run_id=run_id, lease_owner=job_id, status=DistillationUnit.Status.RUNNING).update(
            status=DistillationUnit.Status.PENDING, lease_owner="", lease_expires_at=None, error=message)
        DistillationRun.objects.filter(pk=run_id, status__in=DistillationRun.ACTIVE_STATUSES).update(
            error=message, updated_at=timezone.now())


def run_fail(*, run_id: int, error: str) -> bool:
    """Stop a running run with `error` (what it made so far stays). Returns whether this call stopped it."""
    return bool(DistillationRun.objects.filter(pk=run_id, status__in=DistillationRun.ACTIVE_STATUSES).update(
        status=DistillationRun.Status.FAILED, stage=FAILED_STAGE, error=error, finished_at=timezone.now(),
        updated_at=timezone.now()))


# --- Estimate, start, cancel, resume -------------------------------------------------------------


def run_estimate_for(*, topic: Topic, provider: LLMProvider, kind: str = "auto", **parameters) -> dict:
    """The estimate of the run run_start would start with these arguments, without starting it. Raises RunError."""
    return run_estimate(topic=topic, provider=provider, kind=kind,
                        parameters=run_parameters(topic=topic, kind=kind, **parameters))


def _unit_asks(target: int, p: dict) -> tuple[int, int]:
    """(questions asked, calls) of one unit of `target` questions: each language's quota is asked
    with the margin, in calls of its own language (see questions.question_unit_run)."""
    share, rest = divmod(target, len(run_languages(p)))
    quotas = [share + 1] * rest + [share] * (len(run_languages(p)) - rest)
    asks = [quota + math.ceil(quota * ASK_MARGIN) for quota in quotas if quota]
    return sum(asks), sum(math.ceil(a / p["questions_per_call"]) for a in asks)


def run_estimate(*, topic: Topic, provider: LLMProvider, kind: str, parameters: dict) -> dict:
    """Calls, tokens and cost a run should take with `provider` (before duplicates force extra rounds)."""
    p = parameters
    t = p["tags_per_level"]
    taxonomy_calls = sum(t ** (level - 1) for level in range(1, p["levels"] + 1)) \
        if kind in (DistillationRun.Kind.AUTO, DistillationRun.Kind.TAXONOMY) else 0
    intents_made = sum(t ** level for level in range(1, p["levels"] + 1)) if taxonomy_calls else 0
    if kind != DistillationRun.Kind.TAXONOMY:
        intents = (t ** p["levels"] if p["leaf_only"] else intents_made) if taxonomy_calls \
            else len(_question_targets(topic, p, created=None))
    else:
        intents = 0
    q = p["questions_per_intent"] if kind != DistillationRun.Kind.JUDGE else 0
    ask, per_unit_calls = _unit_asks(q, p)
    question_calls = intents * per_unit_calls
    # Hard negatives: siblings per intent (taxonomy runs: the other tags of its level).
    pairs = _neighbour_pairs(topic, p, kind, intents) if p["hard_negatives"] else 0
    h = p["hard_negatives"]
    h_ask, h_calls = _unit_asks(h, p)
    contrast_calls = pairs * h_calls
    o = p["out_of_scope"]
    o_ask, oos_calls = _unit_asks(o, p)
    tax, que, jud = prompts.TAXONOMY, prompts.QUESTIONS, prompts.JUDGE
    # The judge sees each question once (refinements come on top: judged again, bounded by the rounds).
    if kind == DistillationRun.Kind.JUDGE:
        per_intent = list(_questions_to_judge(topic, p).values())
    elif p["judge"] and intents:
        per_intent = [q + (pairs // intents) * h] * intents
    else:
        per_intent = []
    judged = sum(per_intent)
    judge_calls = sum(math.ceil(n / p["judge_batch"]) for n in per_intent)
    tokens_in = taxonomy_calls * (tax.EST_TOKENS_IN + 10 * t) + question_calls * que.EST_TOKENS_IN \
        + intents * ask * 25 + (contrast_calls + oos_calls) * que.EST_TOKENS_IN \
        + judge_calls * jud.EST_TOKENS_IN + judged * jud.EST_TOKENS_IN_PER_ITEM
    tokens_out = intents_made * tax.EST_TOKENS_OUT_PER_ITEM + intents * ask * que.EST_TOKENS_OUT_PER_ITEM \
        + (pairs * h_ask + o_ask) * que.EST_TOKENS_OUT_PER_ITEM + judged * jud.EST_TOKENS_OUT_PER_ITEM
    judge_provider = provider_resolve(p["judge"]) if p["judge"] else provider
    cost = provider.cost_for(tokens_in, tokens_out)
    if judge_provider.pk != provider.pk and judge_calls:
        judge_in = judge_calls * jud.EST_TOKENS_IN + judged * jud.EST_TOKENS_IN_PER_ITEM
        judge_out = judged * jud.EST_TOKENS_OUT_PER_ITEM
        cost += judge_provider.cost_for(judge_in, judge_out) - provider.cost_for(judge_in, judge_out)
    return {
        "calls": taxonomy_calls + question_calls + contrast_calls + oos_calls + judge_calls,
        "taxonomy_calls": taxonomy_calls, "question_calls": question_calls, "contrast_calls": contrast_calls,
        "out_of_scope_calls": oos_calls, "judge_calls": judge_calls,
        "intents": intents_made, "question_intents": intents if kind != DistillationRun.Kind.JUDGE else 0,
        "questions": intents * q, "hard_negatives": pairs * h, "out_of_scope": o, "judged": judged,
        "judge_intents": len(per_intent),
        "tokens_in": tokens_in, "tokens_out": tokens_out,
        "cost": str(cost.quantize(Decimal("0.0001"))),
        "provider": provider.name, "model": provider.resolved_model or "the server's first model",
        "judge": judge_provider.name if p["judge"] else "",
    }


def _neighbour_pairs(topic: Topic, p: dict, kind: str, intents: int) -> int:
    """(intent, neighbour) pairs hard negatives are written for."""
    if kind == DistillationRun.Kind.AUTO:
        return intents * (p["tags_per_level"] - 1)
    from distiller.selectors import intent_neighbours

    nodes = IntentNode.objects.filter(pk__in=_question_targets(topic, p, created=None))
    return sum(len(intent_neighbours(intent=node)) for node in nodes)


def _questions_to_judge(topic: Topic, p: dict) -> dict:
    """A judge run: per intent, its questions without a verdict (rejected ones left out)."""
    from datasets.models import Question

    rows = (Question.objects.filter(intent_id__in=_question_targets(topic, p, created=None), judge_verdict="")
            .exclude(status=Question.Status.REJECTED).values("intent_id").annotate(n=Count("id"))
            .values_list("intent_id", "n"))
    return dict(rows)


def runs_lost_jobs_requeue() -> list[int]:
    """Queue new work jobs for queued runs whose jobs Redis lost (a restart that came back empty);
    returns their ids. Run by every worker when it finds Redis has forgotten it (config.workers),
    which is the moment such jobs were lost. A run another caller is requeueing is skipped."""
    requeued = []
    for run_id in DistillationRun.objects.filter(status=DistillationRun.Status.QUEUED).values_list("pk", flat=True):
        with transaction.atomic():
            run = DistillationRun.objects.select_for_update(skip_locked=True).filter(
                pk=run_id, status=DistillationRun.Status.QUEUED).first()
            if run is None or not run_jobs_lost(run=run):
                continue
            _enqueue_work(run, None)
            requeued.append(run.pk)
    return requeued


def _enqueue_work(run: DistillationRun, workers: int | None) -> list[str]:
    from django.conf import settings
    from rq import Callback

    from distiller.jobs import run_work, run_work_failed

    # 0 means none: the caller works on the run in its own process (the CLI's --wait).
    count = max(1, distill_worker_count()) if workers is None else workers
    job_ids = [enqueue(run_work, run.pk, queue=QUEUE, job_timeout=settings.DISTILL_JOB_TIMEOUT,
                       on_failure=Callback(run_work_failed)) for _ in range(count)]
    if not job_ids:
        return []
    DistillationRun.objects.filter(pk=run.pk).update(job_ids=(run.job_ids + job_ids)[-50:])
    return job_ids


def run_start(*, topic: Topic, provider: LLMProvider | None = None, kind: str = "auto", user=None,
              workers: int | None = None, idempotency_key: str = "", **parameters) -> DistillationRun:
    """Create a run with its estimate and first stage, and queue it for the distill workers.

    `workers` is how many work jobs to queue (default: one per live distill worker; 0: none, the
    caller works on it). `idempotency_key` makes a client's retry safe: when `user` already
    started a run with that key, that run is returned (with `replayed` set) and nothing is made.
    Raises RunError; code queue_unavailable when Redis cannot take the run's jobs, and then no
    run is left behind (a row whose job was never queued would wait for ever).
    """
    if idempotency_key:
        earlier = _run_for_key(user, idempotency_key)
        if earlier is not None:
            return earlier
    provider = provider or provider_resolve()
    p, estimate = run_check(topic=topic, provider=provider, kind=kind, **parameters)
    if p["pool"]:
        provider = pool_provider(p)
    p["endpoints"] = run_endpoints_resolve(provider=provider, parameters=p)
    run = None
    try:
        with transaction.atomic():
            run = _run_create(topic=topic, kind=kind, provider=provider, parameters=p, estimate=estimate,
                              created_by=user, idempotency_key=idempotency_key, workers=workers)
    except IntegrityError:
        earlier = _run_for_key(user, idempotency_key) if idempotency_key else None
        if earlier is None:
            raise
        return earlier  # the same request, started a moment ago by a concurrent retry
    except REDIS_DOWN_ERRORS as exc:
        # The row committed, but its jobs could not be queued (they are queued on commit).
        if run is not None:
            DistillationRun.objects.filter(pk=run.pk).delete()
        raise RunError("The work queue (Redis) is unreachable, so no run was started; try again shortly "
                       "(with the same Idempotency-Key, a retry cannot start it twice).",
                       code="queue_unavailable") from exc
    return run


def _run_for_key(user, idempotency_key: str) -> DistillationRun | None:
    run = DistillationRun.objects.filter(created_by=user, idempotency_key=idempotency_key).first()
    if run is not None:
        run.replayed = True
    return run


def _run_create(*, topic: Topic, kind: str, provider: LLMProvider, parameters: dict, estimate: dict, created_by,
                idempotency_key: str, workers: int | None) -> DistillationRun:
    """Inside run_start's transaction: the run, its first units, and its jobs queued on commit."""
    p = parameters
    run = DistillationRun.objects.create(
        topic=topic, kind=kind, provider=provider, parameters=p, estimate=estimate, created_by=created_by,
        idempotency_key=idempotency_key,
        status=DistillationRun.Status.QUEUED, questions_target=estimate["questions"],
        judge_provider=provider_resolve(p["judge"]) if p["judge"] else None,
    )
    planned = _plan_first(run)
    DistillationUnit.objects.bulk_create(planned)
    run.stage = planned[0].stage if planned else DONE_STAGE
    # Projected from the estimate; made exact when the run ends.
    run.units_total = (estimate["taxonomy_calls"] + estimate["question_intents"] + estimate["judge_intents"]
                       + int(bool(estimate["out_of_scope"])) + _contrast_units_estimate(run, estimate))
    run.save(update_fields=["stage", "units_total"])
    _enqueue_work(run, workers)
    return run


def run_endpoints_resolve(*, provider: LLMProvider, parameters: dict) -> dict[str, dict]:
    """The base URL and model each provider of a run really uses, resolved once when the run starts
    (from the provider row or, for the custom provider, this process's LLM_BASE_URL / LLM_MODEL).
    Stored in the run's parameters, so every worker calls what the starter saw, whatever its own
    environment says. Keys are not resolved here: each process reads them from its environment."""
    providers = {provider} | {provider_resolve(m["provider"]) for m in parameters.get("pool") or []}
    if parameters.get("judge"):
        providers.add(provider_resolve(parameters["judge"]))
    return {str(p.pk): {"name": p.name, "base_url": p.resolved_base_url, "model": p.resolved_model}
            for p in providers}


def _contrast_units_estimate(run: DistillationRun, estimate: dict) -> int:
    h = run.parameters["hard_negatives"]
    return estimate["hard_negatives"] // h if h else 0


def run_check(*, topic: Topic, provider: LLMProvider, kind: str = "auto", **parameters) -> tuple[dict, dict]:
    """Everything run_start checks, creating nothing (`topic` may be unsaved): (parameters, estimate).

    Raises RunError naming what to fix: a parameter, or a provider without key, base URL or model.
    """
    p = run_parameters(topic=topic, kind=kind, **parameters)
    if p["pool"]:
        provider = pool_provider(p)
    for other in {provider_resolve(m["provider"]) for m in p["pool"]} | (
            {provider_resolve(p["judge"])} if p["judge"] else set()):
        if other.pk != provider.pk:
            _provider_check(other)
    _provider_check(provider)
    return p, run_estimate(topic=topic, provider=provider, kind=kind, parameters=p)


def pool_provider(p: dict) -> LLMProvider:
    """The run's provider of a pool: its first member with a weight."""
    return provider_resolve(next(m["provider"] for m in p["pool"] if m["weight"] > 0))


def _provider_check(provider: LLMProvider) -> None:
    problem = key_variable_problem(provider.api_key_env)
    if problem:
        raise RunError(f"{provider.name}: refusing to send {provider.api_key_env} as its API key. {problem}")
    if not provider.resolved_base_url:
        raise RunError(f"{provider.name} has no base URL: set it on the provider (or LLM_BASE_URL for the "
                       "custom provider).")
    if not provider.resolved_model and provider.kind != LLMProvider.Kind.CUSTOM:
        raise RunError(f"{provider.name} has no model: set it on the provider.")
    if provider.api_key_env and not provider.has_key and provider.kind != LLMProvider.Kind.CUSTOM:
        raise RunError(f"{provider.name}: {provider.api_key_env} is not set; put the API key in that variable.")


def run_cancel(*, run: DistillationRun) -> DistillationRun:
    """Stop a queued or running run; workers stop within a second, keeping what they wrote."""
    stopped = DistillationRun.objects.filter(pk=run.pk, status__in=DistillationRun.ACTIVE_STATUSES).update(
        status=DistillationRun.Status.CANCELLED, stage=CANCELLED_STAGE, finished_at=timezone.now(),
        updated_at=timezone.now())
    run.refresh_from_db()
    if not stopped:
        raise RunError(f"Run #{run.pk} is {run.status}; only queued or running runs can be cancelled.", code="conflict")
    return run


def run_resume(*, run: DistillationRun, workers: int | None = None) -> DistillationRun:
    """Continue a failed, cancelled or stalled (its workers died) run where it stopped.

    Failed units are retried; units of a dead worker are taken over once their lease expires.
    Refused (RunError, conflict) for a succeeded run and for a running one whose units a live
    worker still holds: more jobs would only queue behind it.
    """
    llm_calls_lost_record()
    with transaction.atomic():
        # The status is read under the row lock: run_complete takes the same lock, so a run
        # finishing right now is seen as succeeded here, never flipped back to running.
        run = DistillationRun.objects.select_for_update().get(pk=run.pk)
        if run.status == DistillationRun.Status.SUCCEEDED:
            raise RunError(f"Run #{run.pk} already succeeded; start a new run to add more.", code="conflict")
        if run.status == DistillationRun.Status.RUNNING and run_has_live_lease(run=run):
            raise RunError(f"Run #{run.pk} is running: a worker holds its units. Resume it only once it "
                           "has stopped or shows as stalled.", code="conflict")
        run.units.filter(status=DistillationUnit.Status.FAILED).update(
            status=DistillationUnit.Status.PENDING, lease_owner="", lease_expires_at=None)
        run.status, run.error, run.finished_at = DistillationRun.Status.RUNNING, "", None
        run.stage = units_frontier(run_id=run.pk) or DONE_STAGE
        run.units_failed = 0
        run.units_done = run.units.filter(status=DistillationUnit.Status.DONE).count()
        run.save(update_fields=["status", "stage", "error", "finished_at", "units_failed", "units_done",
                                "updated_at"])
        # Counts as a beat: a resumed run is stalled only if its new jobs do not start either.
        DistillationRun.objects.filter(pk=run.pk).update(heartbeat_at=Now())
        _enqueue_work(run, workers)
    run.refresh_from_db()
    return run
