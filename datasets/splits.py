"""Train/validation/test splits: stratified by intent, deterministic for a seed, duplicate-safe.

Questions are first grouped by their near-duplicate key (datasets.normalize.near_duplicate_key:
the bag of words of the normalized text, numbers and filler words left out, stored on every
question), so "Reset my password!" and "please reset my password" are one group; exact
duplicates share it too. A ratio split also joins the groups of paraphrases (`groups`, from the
paraphrase index: datasets.health.selectors.paraphrase_groups), so "how much money is left in my
checking account" and "... in my savings account" are one group as well. A group is placed whole
in one split, so no near duplicate or paraphrase the index finds straddles train and test. Within each intent the groups are shuffled (sorted by the key mixed with the
seed) and handed out in that order, the first ones to train up to its share of the intent, then
validation, then test, which gives each intent the ratios as closely as whole groups allow. The
shares are rounded fairly across intents (what one intent's rounding gave a part is owed back by
the next ones), so the whole export's parts stay within a question of n * ratio. A group met
again under another intent keeps the split it was first given. An intent that a group kept whole
pulls more than one question off its shares is named in `warnings`, with the group's size.

Memory: the planner remembers the split of a group only when the group is `shared` (it occurs
under more than one intent; an export asks the database which ones do), so it holds one intent
at a time plus the shared groups, whatever the size of the export. Without `shared` it
remembers every group.
"""

import bisect
import functools
import itertools
import json
import math
import operator
import re
from collections import Counter
from collections.abc import Iterable

from datasets.normalize import near_duplicate_key
from datasets.services import DatasetError

SPLIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
MAX_SPLITS = 5
# A question's own split (Question.split) is one of these; files name validation in these ways too.
ASSIGNED_SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"train": "train", "validation": "validation", "val": "validation", "valid": "validation",
                 "dev": "validation", "test": "test"}
ACCEPTED_SPLIT_NAMES = "train, validation or test (val, valid and dev mean validation)"
# Where an export with split "assigned" puts the questions that have no split of their own.
DEFAULT_UNASSIGNED_RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}
CONVENTIONAL_ORDER = {"train": 0, "validation": 1, "valid": 1, "dev": 1, "test": 2}
_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # odd: multiplying by it permutes 64-bit values (Fibonacci hashing)


def split_ratios_validate(raw) -> dict[str, float]:
    """Check a split such as {"train": 0.8, "validation": 0.1, "test": 0.1}; returns it as floats.

    An empty split means "no split". Raises DatasetError saying what to fix.
    """
    if raw in (None, {}, ""):
        return {}
    if not isinstance(raw, dict):
        raise DatasetError('The split must be an object such as {"train": 0.8, "validation": 0.1, "test": 0.1}.',
                           code="invalid_split")
    if len(raw) > MAX_SPLITS:
        raise DatasetError(f"A split has at most {MAX_SPLITS} parts.", code="invalid_split")
    ratios = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not SPLIT_NAME.match(name):
            raise DatasetError(f"Split name {name!r} must be lowercase letters, digits or _, like 'train'.",
                               code="invalid_split")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            # Shown as JSON: the API's callers wrote `true` or "0.8", not Python's True or '0.8'.
            raise DatasetError(f"The ratio of {name!r} must be a number above 0 and at most 1, got "
                               f"{json.dumps(value, default=repr)}.",
                               code="invalid_split")
        ratios[name] = float(value)
    ratios = {name: ratios[name] for name in sorted(ratios, key=split_order)}
    total = sum(ratios.values())
    if abs(total - 1.0) > 1e-6:
        raise DatasetError(f"The split ratios must add up to 1, they add up to {round(total, 6)}.",
                           code="invalid_split")
    return ratios


def split_name_normalize(value: str) -> str | None:
    """A split name as a file may write it ("Train", "val", "dev") as Question.split stores it;
    None when it is not one."""
    return SPLIT_ALIASES.get(value.strip().casefold())


def export_split_validate(raw) -> dict:
    """An export's split as stored on Export.split: {} (one file), a ratio dict (see
    split_ratios_validate), or the assigned mode: questions keep their own split and the others are
    placed by `unassigned` ratios over train, validation and test.

    Accepts "assigned" (unassigned ratios 0.8/0.1/0.1) or {"mode": "assigned", "unassigned": {...}}.
    Raises DatasetError saying what to fix.
    """
    if raw == "assigned":
        raw = {"mode": "assigned"}
    if isinstance(raw, dict) and "mode" in raw:
        extra = set(raw) - {"mode", "unassigned"}
        if raw["mode"] != "assigned" or extra:
            raise DatasetError('A split mode is {"mode": "assigned", "unassigned": {"train": 0.8, ...}}; '
                               f"got {json.dumps(raw, default=repr)}.", code="invalid_split")
        unassigned = split_ratios_validate(raw.get("unassigned") or DEFAULT_UNASSIGNED_RATIOS)
        unknown = [name for name in unassigned if name not in ASSIGNED_SPLITS]
        if unknown:
            raise DatasetError(f"With split \"assigned\", unassigned questions go to train, validation or test, "
                               f"not {unknown[0]!r}.", code="invalid_split")
        return {"mode": "assigned", "unassigned": unassigned}
    if isinstance(raw, str) and raw:
        raise DatasetError(f'Unknown split {raw!r}: give ratios such as {{"train": 0.8, "test": 0.2}} or "assigned".',
                           code="invalid_split")
    return split_ratios_validate(raw)


def split_is_assigned(split: dict) -> bool:
    return isinstance(split, dict) and split.get("mode") == "assigned"


def split_describe(split: dict) -> str:
    """One line for the admin list and the dataset card."""
    if not split:
        return "none"
    def ratios(parts: dict) -> str:  # in split order: the database's JSON type does not keep key order
        return ", ".join(f"{name} {parts[name]:g}" for name in sorted(parts, key=split_order))

    if split_is_assigned(split):
        return f"assigned (the others: {ratios(split['unassigned'])})"
    return ratios(split)


def split_order(name: str) -> tuple:
    """train, then validation, then test, then any other name alphabetically. The database's JSON
    type does not keep key order, and the order decides ties and the file listing."""
    return (CONVENTIONAL_ORDER.get(name, len(CONVENTIONAL_ORDER)), name)


def _mix64(value: int) -> int:
    """splitmix64's finalizer: a 64-bit value to a well-spread 64-bit value."""
    z = value & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def split_targets(n: int, ratios: list[float]) -> list[int]:
    """Whole numbers of questions per split that add up to n (largest remainder, ties to the first)."""
    raw = [n * r for r in ratios]
    targets = [int(x) for x in raw]
    by_remainder = sorted(range(len(ratios)), key=lambda i: (-(raw[i] - targets[i]), i))
    for i in by_remainder[: n - sum(targets)]:
        targets[i] += 1
    return targets


class SplitPlanner:
    """Places questions in the parts of a split, one intent at a time (intents must come whole).

    It keeps the part of every `shared` near-duplicate group it has placed (of every group when
    `shared` is None), so a group met again under a later intent goes where it went first, and
    the warnings about intents too small to split.
    """

    def __init__(self, *, ratios: dict[str, float], seed: int, intent_label=str, shared: set[int] | None = None,
                 groups: dict[int, int] | None = None):
        self.names = sorted(ratios, key=split_order)
        # Near keys joined by paraphrases (datasets.health.selectors.paraphrase_groups): a key
        # stands for its group's key, so a paraphrase pair is kept whole like a near duplicate.
        self.groups = groups or {}
        if self.groups and shared is not None:
            # A paraphrase group may span intents whose near keys each occur under one: remember
            # every group (few: only keys that have a paraphrase are in `groups`).
            shared = {self.groups.get(key, key) for key in shared} | set(self.groups.values())
        self.shares = [ratios[name] for name in self.names]
        self.salt = _mix64(seed)
        self.intent_label = intent_label
        self.shared = shared
        self.assignment: dict[int, int] = {}
        self.warnings: list[str] = []
        # What each part is owed (or owes) by earlier intents: n * share minus what it got, summed.
        self.carry = [0.0] * len(self.names)

    def key(self, text: str) -> int:
        """The near-duplicate key of a text whose stored key is missing; it is remembered as shared,
        since the database could not say where else it occurs."""
        key = self.group_of(near_duplicate_key(text))
        if self.shared is not None:
            self.shared.add(key)
        return key

    def group_of(self, near_key: int) -> int:
        """The key a question with this stored near key is placed by: its paraphrase group's key."""
        return self.groups.get(near_key, near_key)

    def targets(self, n: int) -> list[int]:
        """Whole numbers of questions per part for an intent of n, adding up to n.

        Each part's ideal is its share of n plus what earlier intents left it owed (the carry, of
        which one intent pays back at most one question per part, so no intent is bent further for
        another's sake), and the n questions go out by largest remainder over those ideals. Rounding each
        intent on its own would favour the first parts every time (13 questions at 80/10/10 are
        11/1/1, never 10/2/1), and a whole export's test part would run short by a fraction of a
        question per intent; carried over, the totals stay within one question of n * ratio (and
        what groups kept whole took from a part is given back over the following intents).
        """
        active = [i for i, share in enumerate(self.shares) if share > 0]
        ideal = [n * share + min(max(carry, -1.0), 1.0) for share, carry in zip(self.shares, self.carry, strict=True)]
        targets = [max(math.floor(ideal[i]), 0) if i in active else 0 for i in range(len(ideal))]
        while sum(targets) > n:  # a part owed less than nothing was raised to 0: take it back elsewhere
            i = min((i for i in active if targets[i] > 0), key=lambda i: (ideal[i] - targets[i], -i))
            targets[i] -= 1
        while sum(targets) < n:
            i = max(active, key=lambda i: (ideal[i] - targets[i], -i))
            targets[i] += 1
        return targets

    def place(self, intent_id: int, keys: list[int], *, own_counts: list[int] | None = None,
              own_keys: Iterable[int] = ()) -> list[int]:
        """The part index of each of an intent's questions, given their near-duplicate keys.

        `own_counts` (questions per part) and `own_keys` are the intent's questions that already
        have a part (the assigned mode): they are not placed, but an intent is not called too
        small for a part they fill.

        Written with C-level building blocks (Counter, map, sorted, bisect) rather than a Python
        loop per group: a split export places every exported row.
        """
        remembered, last = self.assignment, len(self.names) - 1
        groups = Counter(keys)
        n = len(keys)
        filled = [0] * len(self.names)
        placed: dict[int, int] = {}
        if remembered:  # near duplicates already placed under another intent keep their part
            for key in remembered.keys() & groups.keys():
                part = placed[key] = remembered[key]
                filled[part] += groups[key]
            free = [key for key in groups if key not in placed] if placed else list(groups)
        else:
            free = list(groups)
        pinned = sum(filled)
        # Mixed with the seed, the keys' order is a seeded shuffle of the groups (the mix is a
        # bijection, so orders are distinct). Hand the groups out in that order: the first ones up
        # to the first part's remaining room to it, and so on; a group is never cut in two and goes
        # to the part that holds its middle (the part where it starts would give the earlier parts
        # every group that straddles a bound, and leave the last part short).
        salt = self.salt
        order = [((key ^ salt) * _GOLDEN) & _M64 for key in free]
        by_order = dict(zip(order, free, strict=True))
        free = list(map(by_order.__getitem__, sorted(order)))
        starts = list(itertools.accumulate(map(groups.__getitem__, free), initial=0))
        targets = self.targets(n)
        room = [max(target - got, 0) for target, got in zip(targets, filled, strict=True)]
        bounds = list(itertools.accumulate(room))
        bounds[last] = float("inf")  # whatever is left goes to the last part
        doubled_bounds = [2 * bound for bound in bounds]  # middles in whole numbers: 2 * start + size
        middles = list(map(operator.add, starts[:-1], starts[1:]))
        parts = list(map(functools.partial(bisect.bisect_right, doubled_bounds), middles))
        placed.update(zip(free, parts, strict=True))
        for part in range(last + 1):  # parts are in order along `free`: one run of groups each
            first, end = bisect.bisect_left(parts, part), bisect.bisect_left(parts, part + 1)
            filled[part] += starts[end] - starts[first]
        self.carry = [n * share + carry - got if share > 0 else 0.0
                      for share, carry, got in zip(self.shares, self.carry, filled, strict=True)]
        if self.shared is None:
            remembered.update(placed)
        elif self.shared:
            remembered.update((key, placed[key]) for key in self.shared.intersection(free))
        if max(abs(got - target) for got, target in zip(filled, targets, strict=True)) > 1:
            self._skew_warn(intent_id, filled, targets, pinned, groups, free, starts, bounds)
        own_counts = own_counts or [0] * len(self.names)
        # A part given no share (the assigned mode's parts that take no unassigned rows) is not short.
        empty = [self.names[i] for i in range(len(self.names))
                 if filled[i] + own_counts[i] == 0 and self.shares[i] > 0]
        if empty:
            total, distinct = n + sum(own_counts), len(groups.keys() | set(own_keys))
            self.warnings.append(
                f"Intent {self.intent_label(intent_id)} has {total} question{'s' if total != 1 else ''} "
                f"({distinct} distinct), too few for this split: {', '.join(empty)} "
                f"get{'s' if len(empty) == 1 else ''} none of it."
            )
        return list(map(placed.__getitem__, keys))

    def _skew_warn(self, intent_id, filled, targets, pinned, groups, free, starts, bounds):
        """Say which near-duplicate groups, kept whole, pulled an intent off its ratios."""
        straddling = [groups[key] for key, begin, end in zip(free, starts, starts[1:], strict=False)
                      if any(begin < bound < end for bound in bounds)]
        causes = []
        if straddling:
            biggest = max(straddling)
            causes.append(f"a group of {biggest} near-duplicate questions is kept in one part")
        if pinned:
            causes.append(f"{pinned} of its questions follow their near duplicates under other intents")
        names = "/".join(self.names)
        self.warnings.append(
            f"Intent {self.intent_label(intent_id)} is split {'/'.join(map(str, filled))} ({names}) instead of "
            f"{'/'.join(map(str, targets))}: {'; '.join(causes) or 'near duplicates are kept together'}."
        )

    def split_of(self, text: str) -> str:
        """The part a text went to (for texts already placed by a planner that remembers all)."""
        return self.names[self.assignment[self.group_of(near_duplicate_key(text))]]


def split_plan(*, rows: Iterable[tuple[int, str]], ratios: dict[str, float], seed: int,
               intent_label=str) -> SplitPlanner:
    """Plan a split of `rows`, (intent_id, text) pairs grouped by intent. Intents too small for
    every part to get a question are reported in `warnings`; their questions are still placed."""
    planner = SplitPlanner(ratios=ratios, seed=seed, intent_label=intent_label)
    for intent_id, pairs in itertools.groupby(rows, key=lambda r: r[0]):
        planner.place(intent_id, [planner.key(text) for _, text in pairs])
    return planner
