"""Reads on topics, taxonomies and questions."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, Max, Min

from datasets.models import PATH_SEPARATOR, IntentNode, Question, Topic
from datasets.question_counts import intent_status_counts, kept_counts


def topic_by_name_or_id(raw: str) -> Topic | None:
    """The topic a command-line user named: by its exact name first, then by an ASCII-digit id
    ("١" or "²" are names, not ids: see config.input)."""
    raw = raw.strip()
    topic = Topic.objects.filter(name=raw).first()
    if topic is None and raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
        topic = Topic.objects.filter(pk=int(raw)).first()
    return topic


@dataclass
class IntentInfo:
    """The seed tool's intent fields for one node, computed once per topic."""

    id: int
    name: str
    number: str
    depth: int
    parent_id: int | None
    intent_full_name: str
    intent_hierarchy: list[str]
    intent_path: str
    intent_numbered_path: str
    is_leaf: bool = True
    counts: dict[str, int] = field(default_factory=dict)  # this node's own questions by status
    subtree_counts: dict[str, int] = field(default_factory=dict)  # including all descendants

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def intent_infos(*, topic: Topic) -> dict[int, IntentInfo]:
    """Every intent of a topic with its path fields, in tree order (one query)."""
    nodes = list(IntentNode.objects.filter(topic=topic).order_by("sort_key").values("id", "name", "number", "depth", "parent_id"))
    infos: dict[int, IntentInfo] = {}
    for node in nodes:  # sorted by sort_key, so a parent always comes before its children
        parent = infos.get(node["parent_id"])
        names = (parent.intent_hierarchy if parent else [topic.name]) + [node["name"]]
        full_name = f"{node['number']} {node['name']}"
        numbered = (parent.intent_numbered_path if parent else topic.name) + PATH_SEPARATOR + full_name
        infos[node["id"]] = IntentInfo(
            id=node["id"], name=node["name"], number=node["number"], depth=node["depth"], parent_id=node["parent_id"],
            intent_full_name=full_name, intent_hierarchy=names, intent_path=PATH_SEPARATOR.join(names),
            intent_numbered_path=numbered,
        )
        if parent:
            parent.is_leaf = False
    return infos


def taxonomy_with_counts(*, topic: Topic) -> list[IntentInfo]:
    """The taxonomy in tree order, each node with question counts by status, own and for its subtree."""
    infos = intent_infos(topic=topic)
    # Kept counts (datasets/question_counts.py): the whole topic's GROUP BY took ~1 s at 1M questions.
    for intent_id, by_status in intent_status_counts(topic_id=topic.pk).items():
        info = infos.get(intent_id)
        if info:
            info.counts.update(by_status)
    for info in reversed(list(infos.values())):  # children before parents
        for status, n in info.counts.items():
            info.subtree_counts[status] = info.subtree_counts.get(status, 0) + n
        parent = infos.get(info.parent_id)
        if parent:
            for status, n in info.subtree_counts.items():
                parent.subtree_counts[status] = parent.subtree_counts.get(status, 0) + n
    return list(infos.values())


def intent_subtree_ids(*, node: IntentNode) -> list[int]:
    """Ids of `node` and all its descendants."""
    prefix = node.number + "."
    descendants = IntentNode.objects.filter(topic_id=node.topic_id, number__startswith=prefix).values_list("id", flat=True)
    return [node.pk, *descendants]


def topic_status_counts(*, topic: Topic) -> dict[str, int]:
    """The topic's questions by status, removed ones left out (kept counts, one small query)."""
    counts = defaultdict(int)
    for row in kept_counts(topic_ids=[topic.pk]):
        counts[row.status] += row.n
    return dict(counts)


# A relabel is an approval under the corrected intent, so both are training data by default.
DEFAULT_EXPORT_STATUSES = (Question.Status.APPROVED, Question.Status.RELABELED)


def export_questions(*, topic: Topic, statuses=DEFAULT_EXPORT_STATUSES, intent: IntentNode | None = None,
                     include_out_of_scope: bool = False):
    """The questions an export of `topic` takes: these statuses, optionally one intent's subtree;
    those of out-of-scope intents (IntentNode.out_of_scope) only when asked for; never removed ones."""
    questions = Question.objects.filter(topic=topic, status__in=list(statuses), removed_at__isnull=True)
    if not include_out_of_scope:
        questions = questions.exclude(intent__out_of_scope=True)
    if intent is not None:
        questions = questions.filter(intent_id__in=intent_subtree_ids(node=intent))
    return questions


def export_shared_near_keys(*, questions) -> set[int] | None:
    """The near-duplicate keys that occur under more than one intent of `questions` (one GROUP BY;
    in practice a small fraction of them): the only groups a split must remember across intents.
    None when some question has no stored key (the split must then remember every group)."""
    if questions.filter(near_key=None).exists():
        return None
    groups = (questions.exclude(near_key=None).order_by().values("near_key")
              .annotate(low=Min("intent_id"), high=Max("intent_id")).filter(low__lt=F("high")))
    return set(groups.values_list("near_key", flat=True))


def export_intent_counts(*, questions) -> dict[int, int]:
    """Questions per intent id (one GROUP BY)."""
    return dict(questions.values_list("intent_id").annotate(n=Count("id")).order_by())


def export_generation_settings(*, questions) -> list[dict]:
    """How the exported questions that a model generated were made: one row per run, provider,
    model, temperature and prompt version, with how many questions each produced (for the dataset
    card). Imported, captured and hand-written questions have no generation settings and are left
    out; `run_id` is None for generated questions whose run is gone."""
    rows = (questions.filter(source=Question.Source.GENERATED)
            .values("run_id", "provider", "model", "temperature", "prompt_version")
            .annotate(n=Count("id")).order_by("-n", "run_id", "provider", "model"))
    return list(rows)


def export_generation_runs(*, run_ids) -> dict[int, dict]:
    """The kind and parameters of the distillation runs that generated exported questions, by id."""
    runs = Question.run.field.related_model.objects.filter(pk__in=[i for i in run_ids if i is not None])
    return {run["id"]: run for run in runs.order_by("id").values("id", "kind", "parameters")}


def export_source_counts(*, questions) -> dict[str, int]:
    """Exported questions per source (generated, imported, captured, manual), most first."""
    rows = questions.values_list("source").annotate(n=Count("id")).order_by("-n", "source")
    return dict(rows)


def questions_visible_to(user):
    """Questions a user may read through the API: every topic's for dataset admins, their
    assigned topics' for reviewers; archived topics' too (read-only), removed ones too (lists
    leave those out)."""
    from datasets.permissions import topics_for_reviewer

    return Question.objects.filter(topic__in=topics_for_reviewer(user, include_archived=True))
