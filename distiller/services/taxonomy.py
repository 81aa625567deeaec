"""One taxonomy unit: the children of one node (or the topic's first level).

Idempotent: the intents a unit created are recorded on the unit in the same transaction that
creates them, so a unit that runs again (its worker died) only tops up to its target.
"""

from datasets.models import PATH_SEPARATOR, IntentNode
from datasets.normalize import normalize_text
from datasets.services import DatasetError, intent_create
from distiller import prompts
from distiller.dedup import NearDuplicateIndex
from distiller.llm import LLMError, LLMFatalError, Usage
from distiller.models import DistillationUnit

MAX_ROUNDS = 3
MAX_NAME_LENGTH = 200
TREE_IN_PROMPT = 300  # intents of the rest of the taxonomy shown when proposing children


def taxonomy_unit_run(ctx, unit: DistillationUnit) -> tuple[bool, str]:
    """Create up to `unit.target` children of `unit.node`. Returns (failed, error)."""
    p = ctx.parameters
    parent = unit.node
    parent_path = [n.name for n in parent.ancestors()] if parent else []
    tree = [PATH_SEPARATOR.join(path) for path in _topic_paths(ctx.topic)][:TREE_IN_PROMPT]
    usage, errors = ctx.usage(unit), []
    for _ in range(MAX_ROUNDS):
        ctx.check()
        unit.refresh_from_db(fields=["produced", "created_ids"])
        need = unit.target - unit.produced
        if need <= 0:
            break
        existing = list(IntentNode.objects.filter(topic=ctx.topic, parent=parent).values_list("name", flat=True))
        prefix = PATH_SEPARATOR.join(parent_path)
        others = [path for path in tree if not (prefix and path.startswith(prefix + PATH_SEPARATOR)
                                                and path.count(PATH_SEPARATOR) == len(parent_path))
                  and not (not prefix and PATH_SEPARATOR not in path)]
        messages = prompts.TAXONOMY.messages(topic=ctx.topic.name, parent_path=parent_path, count=need + 1,
                                            language=p["language"], existing=existing,
                                            topic_description=ctx.topic.description,
                                            parent_description=parent.description if parent else "",
                                            tree=others)
        try:
            answer = ctx.client.complete_json(messages=messages, schema=prompts.TAXONOMY.Answer,
                                              schema_name="taxonomy", temperature=p["temperature"], usage=usage,
                                              example=prompts.TAXONOMY.EXAMPLE,
                                              max_tokens=200 + 2 * prompts.TAXONOMY.EST_TOKENS_OUT_PER_ITEM * (need + 1))
        except LLMFatalError:
            _write(ctx, unit, [], usage)  # the refused call (and any invalid ones) still count
            raise
        except LLMError as exc:
            errors.append(exc.message)
            _write(ctx, unit, [], usage)
            continue
        errors.clear()
        taken = {normalize_text(name) for name in existing}
        names = NearDuplicateIndex(p["near_duplicate_threshold"])
        for name in existing:
            names.add(name, force=True)
        fresh, counts = [], {"duplicates_dropped": 0, "near_duplicates_dropped": 0, "invalid_dropped": 0}
        for intent in answer.intents:
            name = " ".join(intent.name.split()).strip(" .")
            if not name or len(name) > MAX_NAME_LENGTH:
                counts["invalid_dropped"] += 1
            elif normalize_text(name) in taken:
                counts["duplicates_dropped"] += 1
            elif not names.add(name):
                counts["near_duplicates_dropped"] += 1
            else:
                taken.add(normalize_text(name))
                fresh.append((name, intent.description.strip()))
        _write(ctx, unit, fresh, usage, **counts)
    unit.refresh_from_db(fields=["produced"])
    if unit.produced < unit.target and errors:
        return True, errors[-1]
    return False, ""


def _topic_paths(topic) -> list[list[str]]:
    """Every intent of the topic as its path of names, in tree order (one query)."""
    nodes = list(IntentNode.objects.filter(topic=topic).order_by("sort_key").values_list("pk", "parent_id", "name"))
    paths: dict[int, list[str]] = {}
    for pk, parent_id, name in nodes:  # sort_key order: a parent comes before its children
        paths[pk] = [*paths.get(parent_id, []), name]
    return list(paths.values())


def _write(ctx, unit: DistillationUnit, fresh: list[tuple[str, str]], usage: Usage, **counts) -> None:
    from django.db import transaction

    with transaction.atomic():
        locked = ctx.locked_unit(unit.pk)
        created = []
        for name, description in fresh[: max(0, locked.target - locked.produced)]:
            try:
                created.append(intent_create(topic=ctx.topic, parent=unit.node, name=name, description=description,
                                             run_id=ctx.run_id, prompt_version=prompts.TAXONOMY.VERSION).pk)
            except DatasetError:  # a sibling with this name appeared meanwhile
                counts["duplicates_dropped"] = counts.get("duplicates_dropped", 0) + 1
        if created:
            locked.produced += len(created)
            locked.created_ids = [*locked.created_ids, *created]
            locked.save(update_fields=["produced", "created_ids", "updated_at"])
        ctx.record(usage, unit.pk, intents_created=len(created), **counts)
