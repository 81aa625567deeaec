"""Reads of the paraphrase index for other features: the groups an export's split keeps together."""

from datasets.health.index import paraphrase_candidate_pairs, paraphrase_index_fill
from datasets.health.paraphrase import PARAPHRASE_THRESHOLD, paraphrase_shingles, paraphrase_similarity

# Neighbours compared in a crowded band key by a split's paraphrase groups: crowds up to this size
# are compared whole, so whatever order another reader gives them, it finds no pair the split missed.
# Past SPLIT_WIDE_BUCKET_MAX_QUESTIONS the candidate pairs would grow eightfold in templated crowds
# (each compared): larger splits compare the index's usual 8 neighbours, as the report does.
SPLIT_PARAPHRASE_BUCKET = 64
SPLIT_WIDE_BUCKET_MAX_QUESTIONS = 200_000
REPORT_BUCKET = 8
SETTLE_BATCH = 20_000  # candidate pairs compared per read of their texts


def split_paraphrase_groups(*, questions) -> dict[int, int]:
    """paraphrase_groups for a split of `questions`: crowds compared whole up to
    SPLIT_PARAPHRASE_BUCKET + 1 members when there are at most SPLIT_WIDE_BUCKET_MAX_QUESTIONS."""
    wide = questions.count() <= SPLIT_WIDE_BUCKET_MAX_QUESTIONS
    return paraphrase_groups(questions=questions, max_bucket=SPLIT_PARAPHRASE_BUCKET if wide else REPORT_BUCKET,
                             fill=False)


def paraphrase_groups(*, questions, max_bucket: int = REPORT_BUCKET, fill: bool = True) -> dict[int, int]:
    """Near-duplicate keys joined by paraphrases: {near key: the group's key} for every near key
    that has a paraphrase (Jaccard of word shingles >= PARAPHRASE_THRESHOLD) with another near key
    among `questions`, groups closed transitively; the group's key is its smallest near key.

    Augmented questions join the group of the question they are a variant of.

    A split that groups questions by `groups.get(near_key, near_key)` instead of `near_key` puts
    no paraphrase pair the index finds on both sides. Indexes unindexed questions first, unless
    not `fill` (a split: every write path indexes its rows, and the probe for unindexed ones can
    be slow on tables the planner has no statistics for).

    `max_bucket`: in a band key shared by more questions (a crowd), each is compared with its next
    `max_bucket` neighbours by id (datasets.health.index.paraphrase_candidate_pairs). A split asks
    for more (SPLIT_PARAPHRASE_BUCKET) so a pair another ordering of the crowd would compare (the
    report of the exported files, in file order) is not missed."""
    if fill:
        paraphrase_index_fill(questions=questions)
    # Streamed: the candidate pairs of a million templated questions run to tens of millions (a
    # set of them took 3 GB). Only the near keys are held for every question; the pairs that still
    # need comparing are settled in batches, their texts read per batch.
    near_of = dict(questions.exclude(near_key=None).values_list("pk", "near_key").iterator(chunk_size=20000))
    parent: dict[int, int] = {}

    def find(key: int) -> int:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def root(key: int) -> int:  # find() without adding the key: most near keys join nothing
        while (up := parent.get(key, key)) != key:
            key = up
        return key

    def joined(a: int, b: int) -> bool:  # same near key, or groups already joined: nothing to compare
        return near_of[a] == near_of[b] or (bool(parent) and root(near_of[a]) == root(near_of[b]))

    def settle(batch: list[tuple[int, int]]) -> None:
        ids = {pk for pair in batch for pk in pair}
        shingles = {pk: paraphrase_shingles(text) for pk, text in
                    questions.filter(pk__in=ids).values_list("pk", "text").iterator(chunk_size=20000)}
        for a, b in batch:
            if joined(a, b) or a not in shingles or b not in shingles:
                continue
            if paraphrase_similarity(shingles[a], shingles[b]) >= PARAPHRASE_THRESHOLD:
                root_a, root_b = find(near_of[a]), find(near_of[b])
                if root_a != root_b:
                    parent[max(root_a, root_b)] = min(root_a, root_b)

    batch: list[tuple[int, int]] = []
    for a, b in paraphrase_candidate_pairs(questions=questions, max_bucket=max_bucket):
        if a not in near_of or b not in near_of or joined(a, b):
            continue
        batch.append((a, b))
        if len(batch) >= SETTLE_BATCH:
            settle(batch)
            batch = []
    settle(batch)
    # An augmented variant (a typo, chat spelling) is its source question written another way:
    # it joins its source's group even when their words differ too much for the index.
    variants = questions.filter(augmented_from__isnull=False, augmented_from__near_key__isnull=False).exclude(
        near_key=None).values_list("near_key", "augmented_from__near_key")
    for variant_key, source_key in variants.iterator(chunk_size=20000):
        if variant_key != source_key:
            root_a, root_b = find(variant_key), find(source_key)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
    return {key: find(key) for key in parent}
