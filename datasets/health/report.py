"""The dataset health report: sections computed from a dataset's rows, for a topic or a file.

A HealthData holds the rows column by column (a million questions of a topic fit in a few
hundred MB); datasets/health/sources.py fills it from a topic or from a file. Every section
names the offending intents and rows (by question id or file line), not only counts.
"""

import bisect
import random
import statistics
from array import array
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from datasets.health.paraphrase import PARAPHRASE_THRESHOLD, paraphrase_shingles, paraphrase_similarity

SMALL_INTENT = 10
DIVERSITY_SAMPLE = 200  # distinct-n and lengths of pairs from at most this many questions per intent
SIMILARITY_SAMPLE = 60  # mean pairwise similarity over at most this many (1,770 pairs) per intent
MAX_LISTED = 50  # offending rows or groups listed per finding (all are counted)
SEED = 42


@dataclass
class HealthData:
    """A dataset's rows, column by column. `refs` are question ids (a topic, ascending) or file lines."""

    kind: str  # "topic" or "file"
    name: str
    intents: list[str] = field(default_factory=list)  # intent labels, by index
    refs: array = field(default_factory=lambda: array("q"))
    texts: list[str] = field(default_factory=list)
    intent_of: array = field(default_factory=lambda: array("i"))
    near_keys: array = field(default_factory=lambda: array("q"))
    hashes: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)  # detected
    sources: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    splits: list[str] = field(default_factory=list)  # "" when the row has none
    requested_languages: list[str] = field(default_factory=list)
    target_per_intent: int | None = None
    mix: list[dict] = field(default_factory=list)  # per run: requested vs found shares (topics)
    leakage_split: str = ""  # how the parts of the leakage section were decided
    paraphrase_pairs: Callable[[], Iterable[tuple[int, int]]] | None = None  # candidate (index, index) pairs
    exact_groups_override: list | None = None

    def ref(self, index: int) -> int:
        return self.refs[index]

    def index_of(self, ref: int) -> int | None:
        i = bisect.bisect_left(self.refs, ref)
        return i if i < len(self.refs) and self.refs[i] == ref else None


def gini(values: list[int]) -> float:
    """The Gini coefficient of the counts: 0 when every intent has as many questions, towards 1
    when a few intents hold them all."""
    if not values or not sum(values):
        return 0.0
    ordered = sorted(values)
    n = len(ordered)
    weighted = sum((i + 1) * v for i, v in enumerate(ordered))
    return round((2 * weighted) / (n * sum(ordered)) - (n + 1) / n, 4)


def _row(data: HealthData, i: int) -> dict:
    return {"ref": data.refs[i], "text": data.texts[i][:200], "intent": data.intents[data.intent_of[i]]}


def balance_section(data: HealthData) -> dict:
    counts = Counter(data.intent_of)
    per_intent = [{"intent": name, "count": counts.get(i, 0)} for i, name in enumerate(data.intents)]
    values = [row["count"] for row in per_intent]
    section = {
        "per_intent": per_intent,
        "min": min(values, default=0), "median": statistics.median(values) if values else 0,
        "max": max(values, default=0), "gini": gini(values),
        "under_10": [row for row in per_intent if row["count"] < SMALL_INTENT],
        "target": data.target_per_intent,
        "under_target": [row for row in per_intent if data.target_per_intent and row["count"] < data.target_per_intent],
    }
    return section


def duplicates_section(data: HealthData) -> tuple[dict, list[tuple[int, int, float]]]:
    by_hash: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(data.hashes):
        by_hash[digest].append(i)
    conflicts, exact = [], []
    exact_extra = 0
    for members in by_hash.values():
        if len(members) < 2:
            continue
        intents = {data.intent_of[i] for i in members}
        if len(intents) > 1:
            conflicts.append({"text": data.texts[members[0]][:200],
                              "intents": sorted(data.intents[k] for k in intents),
                              "refs": [data.refs[i] for i in members]})
        per_intent = Counter(data.intent_of[i] for i in members)
        repeated = sum(n - 1 for n in per_intent.values() if n > 1)
        if repeated:
            exact_extra += repeated
            exact.append({"text": data.texts[members[0]][:200], "refs": [data.refs[i] for i in members],
                          "intents": sorted({data.intents[data.intent_of[i]] for i in members})})
    by_key: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(data.near_keys):
        by_key[key].append(i)
    near_within, near_across = [], []
    for members in by_key.values():
        if len({data.hashes[i] for i in members}) < 2:  # only exact copies: counted above
            continue
        group = {"refs": [data.refs[i] for i in members], "texts": [data.texts[i][:200] for i in members[:5]],
                 "intents": sorted({data.intents[data.intent_of[i]] for i in members})}
        (near_across if len(group["intents"]) > 1 else near_within).append(group)
    pairs = paraphrase_pairs_verified(data)
    para_within, para_across = [], []
    for a, b, score in pairs:
        row = {"score": round(score, 3), "a": _row(data, a), "b": _row(data, b)}
        (para_across if data.intent_of[a] != data.intent_of[b] else para_within).append(row)
    para_across.sort(key=lambda r: (-r["score"], r["a"]["ref"]))
    para_within.sort(key=lambda r: (-r["score"], r["a"]["ref"]))
    section = {
        "label_conflicts": {"count": len(conflicts), "listed": conflicts[:MAX_LISTED]},
        "exact": {"count": exact_extra, "groups": len(exact), "listed": exact[:MAX_LISTED]},
        "near": {
            "within_intent": {"count": len(near_within), "listed": near_within[:MAX_LISTED]},
            "across_intents": {"count": len(near_across), "listed": near_across[:MAX_LISTED]},
        },
        "paraphrases": {
            "threshold": PARAPHRASE_THRESHOLD,
            "within_intent": {"count": len(para_within), "listed": para_within[:MAX_LISTED]},
            "across_intents": {"count": len(para_across), "listed": para_across[:MAX_LISTED]},
        },
    }
    return section, pairs


SHINGLE_CACHE = 200_000


def paraphrase_pairs_verified(data: HealthData) -> list[tuple[int, int, float]]:
    """Paraphrase pairs between near-duplicate groups: one pair (a question of each, by row index,
    with their similarity) per two groups whose questions are paraphrases, so a group of 40 copies
    paraphrasing another of 40 is one finding, not 1,600. Pairs within one group are near
    duplicates, counted as such. Memory: the group pairs compared and a bounded shingle cache."""
    compared: set[tuple[int, int]] = set()
    result = []
    shingles: OrderedDict[int, frozenset] = OrderedDict()

    def of(i):
        found = shingles.get(i)
        if found is None:
            found = shingles[i] = paraphrase_shingles(data.texts[i])
            if len(shingles) > SHINGLE_CACHE:
                shingles.popitem(last=False)
        return found

    near_keys = data.near_keys
    for a, b in data.paraphrase_pairs() if data.paraphrase_pairs else ():
        key_a, key_b = near_keys[a], near_keys[b]
        if key_a == key_b:
            continue
        group_pair = (key_a, key_b) if key_a < key_b else (key_b, key_a)
        if group_pair in compared:
            continue
        score = paraphrase_similarity(of(a), of(b))
        if score >= PARAPHRASE_THRESHOLD:
            compared.add(group_pair)
            result.append((min(a, b), max(a, b), score))
    return result


def _distinct(samples: list[list[str]], n: int) -> float:
    grams = [tuple(words[i:i + n]) for words in samples for i in range(len(words) - n + 1)]
    return round(len(set(grams)) / len(grams), 4) if grams else 0.0


def diversity_section(data: HealthData) -> dict:
    members: dict[int, list[int]] = defaultdict(list)
    for i, intent in enumerate(data.intent_of):
        members[intent].append(i)
    chance = random.Random(SEED)
    rows = []
    for intent, indexes in sorted(members.items()):
        lengths = sorted(len(data.texts[i].split()) for i in indexes)
        sample = indexes if len(indexes) <= DIVERSITY_SAMPLE else chance.sample(indexes, DIVERSITY_SAMPLE)
        words = [data.texts[i].lower().split() for i in sample]
        pair_sample = [paraphrase_shingles(data.texts[i]) for i in sample[:SIMILARITY_SAMPLE]]
        sims = [paraphrase_similarity(a, b) for k, a in enumerate(pair_sample) for b in pair_sample[k + 1:]]
        rows.append({
            "intent": data.intents[intent], "count": len(indexes), "sample": len(sample),
            "distinct_1": _distinct(words, 1), "distinct_2": _distinct(words, 2),
            "mean_similarity": round(sum(sims) / len(sims), 4) if sims else None,
            "length": {"min": lengths[0], "median": statistics.median(lengths), "max": lengths[-1],
                       "mean": round(sum(lengths) / len(lengths), 2),
                       "histogram": _length_histogram(lengths)},
        })
    alike = sorted((r for r in rows if r["mean_similarity"] is not None), key=lambda r: -r["mean_similarity"])
    return {"per_intent": rows, "most_alike": [{"intent": r["intent"], "mean_similarity": r["mean_similarity"]}
                                               for r in alike[:10]]}


LENGTH_BINS = (1, 3, 5, 8, 12, 20, 40)


def _length_histogram(lengths: list[int]) -> dict[str, int]:
    """Words per question in bins: "1-2", "3-4", ... "40+"."""
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(LENGTH_BINS, LENGTH_BINS[1:], strict=False)] + [f"{LENGTH_BINS[-1]}+"]
    counts = Counter(bisect.bisect_right(LENGTH_BINS, n) - 1 for n in lengths)
    return {label: counts.get(i, 0) for i, label in enumerate(labels) if i >= 0}


def coverage_section(data: HealthData) -> dict:
    found = Counter(data.languages)
    requested = sorted(set(data.requested_languages))
    unexpected = defaultdict(list)
    for i, lang in enumerate(data.languages):
        if lang and lang not in requested:
            unexpected[lang].append(i)
    return {
        "languages": {
            "requested": requested,
            "found": {lang or "unknown": n for lang, n in sorted(found.items())},
            "not_requested": {lang: {"count": len(idx), "listed": [_row(data, i) for i in idx[:MAX_LISTED]]}
                              for lang, idx in sorted(unexpected.items())},
        },
        "mix": data.mix,
        "sources": dict(sorted(data.sources.items())),
        "statuses": dict(sorted(data.statuses.items())),
    }


def leakage_section(data: HealthData, pairs: list[tuple[int, int, float]]) -> dict:
    """Near-duplicate groups and paraphrase pairs whose questions sit in different parts."""
    if not any(data.splits):
        return {"split": data.leakage_split or "none", "checked": False,
                "near": {"count": 0, "listed": []}, "paraphrases": {"count": 0, "listed": []}}
    parts_of_key: dict[int, set[str]] = defaultdict(set)
    members: dict[int, list[int]] = defaultdict(list)
    for i, key in enumerate(data.near_keys):
        if data.splits[i]:
            parts_of_key[key].add(data.splits[i])
            members[key].append(i)
    near = [{"parts": sorted(parts), "refs": [data.refs[i] for i in members[key]][:20],
             "texts": [data.texts[i][:200] for i in members[key][:3]]}
            for key, parts in parts_of_key.items() if len(parts) > 1]
    para = [{"score": round(score, 3), "a": {**_row(data, a), "split": data.splits[a]},
             "b": {**_row(data, b), "split": data.splits[b]}}
            for a, b, score in pairs if data.splits[a] and data.splits[b] and data.splits[a] != data.splits[b]]
    return {"split": data.leakage_split, "checked": True,
            "near": {"count": len(near), "listed": near[:MAX_LISTED]},
            "paraphrases": {"count": len(para), "listed": para[:MAX_LISTED]}}


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def verdicts(report: dict) -> list[dict]:
    """What to fix first, most harmful first: label conflicts, leakage, cross-intent duplicates,
    tiny intents, languages not requested, within-intent duplicates, imbalance."""
    out = []
    dup, bal, cov, leak = report["duplicates"], report["balance"], report["coverage"], report["leakage"]

    def add(severity, message):
        out.append({"severity": severity, "message": message})

    if dup["label_conflicts"]["count"]:
        add("error", f"{_plural(dup['label_conflicts']['count'], 'text')} under two or more intents (label "
                     "conflicts): keep one intent each.")
    if leak["near"]["count"] or leak["paraphrases"]["count"]:
        add("error", f"Leakage across {leak['split']}: {_plural(leak['near']['count'], 'near-duplicate group')} and "
                     f"{_plural(leak['paraphrases']['count'], 'paraphrase pair')} on both sides.")
    if dup["near"]["across_intents"]["count"]:
        add("error", f"{_plural(dup['near']['across_intents']['count'], 'near-duplicate group')} spanning intents.")
    if dup["paraphrases"]["across_intents"]["count"]:
        add("warning", f"{_plural(dup['paraphrases']['across_intents']['count'], 'paraphrase pair')} across intents: "
                       "check the intents' boundaries.")
    if bal["under_10"]:
        names = ", ".join(r["intent"] for r in bal["under_10"][:5])
        add("error", f"{_plural(len(bal['under_10']), 'intent')} with fewer than {SMALL_INTENT} questions: {names}.")
    for lang, found in cov["languages"]["not_requested"].items():
        add("warning", f"{_plural(found['count'], 'question')} in {lang}, a language not requested "
                       f"({', '.join(cov['languages']['requested']) or 'none'}).")
    if dup["exact"]["count"]:
        add("warning", f"{_plural(dup['exact']['count'], 'exact duplicate')} within intents.")
    if dup["near"]["within_intent"]["count"]:
        add("info", f"{_plural(dup['near']['within_intent']['count'], 'near-duplicate group')} within intents.")
    if bal["target"] and bal["under_target"]:
        add("info", f"{_plural(len(bal['under_target']), 'intent')} under the target of {bal['target']} questions.")
    if bal["gini"] > 0.2:
        add("warning", f"Imbalanced intents (Gini {bal['gini']}): from {bal['min']} to {bal['max']} questions.")
    return out


def health_report(data: HealthData) -> dict:
    """The whole report of `data` as a JSON-ready dict (verdicts first)."""
    duplicates, pairs = duplicates_section(data)
    report = {
        "subject": {"kind": data.kind, "name": data.name, "questions": len(data.texts), "intents": len(data.intents)},
        "verdicts": [],
        "balance": balance_section(data),
        "duplicates": duplicates,
        "diversity": diversity_section(data),
        "coverage": coverage_section(data),
        "leakage": leakage_section(data, pairs),
    }
    report["verdicts"] = verdicts(report)
    return report
