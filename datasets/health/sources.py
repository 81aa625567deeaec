"""Fill a HealthData from a topic (its questions and the paraphrase index) or from a file that is
not imported (read with the import's readers, nothing written)."""

import sys
from array import array
from collections import Counter, defaultdict
from pathlib import Path

from django.db.models import Count

from datasets.formats.readers import READERS, ImportProblem
from datasets.health.index import paraphrase_candidate_pairs, paraphrase_index_fill
from datasets.health.language import language_detect
from datasets.health.paraphrase import paraphrase_keys_batch
from datasets.health.report import HealthData
from datasets.health.selectors import split_paraphrase_groups
from datasets.models import Question, Topic
from datasets.normalize import near_duplicate_key, text_hash
from datasets.selectors import DEFAULT_EXPORT_STATUSES, export_shared_near_keys, intent_infos
from datasets.services import DatasetError
from datasets.splits import SplitPlanner, split_name_normalize

# A report's file is read whole into memory (its texts and keys): uploads and --file are capped.
HEALTH_FILE_MAX_BYTES = 20 * 1024 * 1024
LEAKAGE_RATIOS = {"train": 0.8, "test": 0.2}
LEAKAGE_SEED = 42
FILE_MAX_PROBLEMS = 20


def topic_health_data(*, topic: Topic) -> HealthData:
    """A topic's questions for the report; questions the paraphrase index lacks are indexed first."""
    questions = Question.objects.filter(topic=topic, removed_at__isnull=True)  # removed ones are out of the data
    paraphrase_index_fill(questions=questions)
    infos = intent_infos(topic=topic)
    ids = list(infos)
    position = {intent_id: i for i, intent_id in enumerate(ids)}
    data = HealthData(kind="topic", name=topic.name, intents=[infos[i].intent_full_name for i in ids],
                      target_per_intent=topic.target_per_intent)
    rows = questions.order_by("id").values_list("id", "text", "intent_id", "near_key", "split")
    for pk, text, intent_id, near_key, split in rows.iterator(chunk_size=20000):
        data.refs.append(pk)
        data.texts.append(text)
        data.intent_of.append(position[intent_id])
        data.near_keys.append(near_key if near_key is not None else near_duplicate_key(text))
        data.languages.append(sys.intern(language_detect(text)))
        data.splits.append(sys.intern(split))
    data.hashes = data.refs  # a text is unique per topic (a constraint): no exact duplicates to find
    if topic.leaf_only:
        _drop_empty_inner_intents(data, [infos[i].is_leaf for i in ids])
    data.sources = Counter(dict(questions.values_list("source").annotate(n=Count("id")).order_by()))
    data.statuses = Counter(dict(questions.values_list("status").annotate(n=Count("id")).order_by()))
    data.requested_languages, data.mix = _topic_requests(topic)
    _topic_leakage_parts(topic, data)

    def pairs():
        for a, b in paraphrase_candidate_pairs(questions=questions):
            i, j = data.index_of(a), data.index_of(b)
            if i is not None and j is not None:
                yield i, j

    data.paraphrase_pairs = pairs
    return data


def _drop_empty_inner_intents(data: HealthData, is_leaf: list[bool]) -> None:
    """A leaf-only topic's inner intents hold no questions by design: they are not intents of the
    dataset (the dashboard leaves them out too), so they are neither small nor under the target.
    One that does hold questions (imported there, say) stays."""
    held = set(data.intent_of)
    kept = [i for i, leaf in enumerate(is_leaf) if leaf or i in held]
    if len(kept) == len(is_leaf):
        return
    position = {old: new for new, old in enumerate(kept)}
    data.intents = [data.intents[i] for i in kept]
    data.intent_of = array("i", (position[i] for i in data.intent_of))


def _topic_requests(topic: Topic) -> tuple[list[str], list[dict]]:
    """The languages asked for (the topic's and its runs' question languages: a run's `languages`,
    or its `language` for runs started before it) and, per run, the requested mix of styles,
    audiences and edge cases against what its questions carry."""
    from distiller.mix import mix_validate
    from distiller.models import DistillationRun

    languages = {topic.language}
    mix_rows = []
    for run in DistillationRun.objects.filter(topic=topic).order_by("id"):
        params = run.parameters or {}
        requested_languages = params.get("languages") or [params.get("language")]
        languages.update(code for code in requested_languages if code)
        try:
            requested = mix_validate(params.get("mix"))
        except ValueError:
            continue
        generated = Question.objects.filter(run=run)
        total = generated.count()
        if not total:
            continue
        for dimension in ("style", "audience", "edge_case"):
            found = dict(generated.values_list(dimension).annotate(n=Count("id")).order_by())
            weights = requested[dimension]
            weight_sum = sum(weights.values())
            values = sorted(set(weights) | {v for v in found if v})
            mix_rows.append({
                "run": run.pk, "dimension": dimension, "questions": total,
                "values": [{"value": v, "requested": round(weights.get(v, 0) / weight_sum, 3),
                            "found": round(found.get(v, 0) / total, 3)} for v in values],
            })
    return sorted(languages), mix_rows


def _topic_leakage_parts(topic: Topic, data: HealthData) -> None:
    """The part of every question an export would use: its own split, else the export's planner
    (the stored near keys, the default 80/20 split, seed 42) for the questions an export takes."""
    exported = Question.objects.filter(topic=topic, status__in=list(DEFAULT_EXPORT_STATUSES))
    if not exported.exists():
        exported = Question.objects.filter(topic=topic)
    # The export's ratio split keeps paraphrase groups whole too: the same groups here.
    planner = SplitPlanner(ratios=LEAKAGE_RATIOS, seed=LEAKAGE_SEED, shared=export_shared_near_keys(questions=exported),
                           groups=split_paraphrase_groups(questions=exported))
    unplaced = exported.filter(split="").order_by("intent_id", "id").values_list("id", "intent_id", "near_key", "text")
    by_intent: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pk, intent_id, near_key, text in unplaced.iterator(chunk_size=20000):
        by_intent[intent_id].append((pk, planner.group_of(near_key) if near_key is not None else planner.key(text)))
    placed = {}
    for intent_id, items in by_intent.items():
        for (pk, _), part in zip(items, planner.place(intent_id, [k for _, k in items]), strict=True):
            placed[pk] = planner.names[part]
    for i, pk in enumerate(data.refs):
        if not data.splits[i] and pk in placed:
            data.splits[i] = placed[pk]
    own = any(data.splits[i] and data.refs[i] not in placed for i in range(len(data.refs)))
    data.leakage_split = ("the questions' own splits" + (", the others " if placed else "") if own else "") + \
        ("an 80/20 train/test split (seed 42)" if placed else "")


def file_health_data(*, files: list[tuple[str, object]], format: str = "", languages: list[str] | None = None,
                     text_column: str = "", intent_column: str = "") -> HealthData:
    """The rows of one or more files (name, seekable binary stream) for the report. A row's split
    is its own `split` field, else the file's name when it is one (train.jsonl, test.jsonl).
    Raises DatasetError on a file over HEALTH_FILE_MAX_BYTES, binary content, wrong encoding, an
    unknown format or columns it cannot read; nothing is written anywhere."""
    names = ", ".join(name for name, _ in files)
    data = HealthData(kind="file", name=names, requested_languages=sorted(languages or ["en"]))
    intent_position: dict[str, int] = {}
    problems: list[ImportProblem] = []
    problem_count = 0
    for name, stream in files:
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(0)
        if size > HEALTH_FILE_MAX_BYTES:
            raise DatasetError(f"{name} is {size:,} bytes, over the report's limit of {HEALTH_FILE_MAX_BYTES:,} "
                               f"({HEALTH_FILE_MAX_BYTES // 2**20} MiB): check a sample of it, or import it and "
                               "read the topic's report.", code="file_too_large")
        head = stream.read(8192)
        stream.seek(0)
        if b"\x00" in head:
            raise DatasetError(f"{name} is a binary file (it has NUL bytes): give a JSONL, CSV or Alpaca file.",
                               code="invalid_file")
        file_format = format or _format_of(name)
        reader_class = READERS.get(file_format)
        if reader_class is None:
            raise DatasetError(f"Unknown format {file_format!r} for {name}: use {', '.join(READERS)}.",
                               code="invalid_format")
        file_split = split_name_normalize(Path(name).stem) or ""
        reader = reader_class(topic_name="", text_column=text_column, intent_column=intent_column)
        start = len(data.texts)
        for item in reader.read(stream):
            if isinstance(item, ImportProblem):
                problem_count += 1
                if len(problems) < FILE_MAX_PROBLEMS:
                    problems.append(item)
                continue
            label = item.intent_names[0]
            if label not in intent_position:
                intent_position[label] = len(data.intents)
                data.intents.append(label)
            data.refs.append(item.line)
            data.texts.append(item.text)
            data.intent_of.append(intent_position[label])
            data.near_keys.append(near_duplicate_key(item.text))
            data.hashes.append(text_hash(item.text))
            data.languages.append(sys.intern(language_detect(item.text)))
            data.splits.append(item.split or file_split)
            data.statuses[item.status or "none"] += 1
        data.sources[name] = len(data.texts) - start
    if problems:
        lines = "; ".join(f"line {p.line}: {p.message}" if p.line else p.message for p in problems)
        raise DatasetError(f"{names} has {problem_count:,} row{'s' if problem_count != 1 else ''} the report cannot "
                           f"read: {lines}", code="invalid_file",
                           details=[p.as_dict() for p in problems])
    if not data.texts:
        raise DatasetError(f"{names} has no questions.", code="invalid_file")
    if any(data.splits):
        data.leakage_split = "the rows' splits"
    if len(files) > 1:  # lines restart in every file: refs must stay distinct and ascending
        data.refs = type(data.refs)("q", range(1, len(data.texts) + 1))
    data.paraphrase_pairs = lambda: _file_pairs(data)
    return data


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lower().lstrip(".")
    return {"jsonl": "jsonl", "csv": "csv", "json": "alpaca"}.get(suffix, "jsonl")


def _file_pairs(data: HealthData, max_bucket: int = 8):
    """Candidate pairs of a file's rows: those sharing a band key, computed in memory."""
    buckets: dict[int, list[int]] = defaultdict(list)
    batch = 5000
    for start in range(0, len(data.texts), batch):
        keys = paraphrase_keys_batch(data.texts[start:start + batch], topic_id=0)
        for offset, band_keys in enumerate(keys):
            for key in band_keys:
                buckets[key].append(start + offset)
    for members in buckets.values():
        for i, a in enumerate(members):
            for b in members[i + 1:i + 1 + max_bucket]:
                yield a, b
