"""Train/validation/test splits: stratified by intent, deterministic for a seed, duplicate-safe.

Questions are first grouped by their near-duplicate key (datasets.normalize.near_duplicate_key:
the bag of words of the normalized text, numbers and filler words left out, stored on every
question), so "Reset my password!" and "please reset my password" are one group; exact
duplicates share it too. A group is placed whole in one split, so no near duplicate straddles
train and test. Within each intent the groups are shuffled (sorted by the key mixed with the
seed) and handed out in that order, the first ones to train up to its share of the intent, then
validation, then test, which gives each intent the ratios as closely as whole groups allow. A
group met again under another intent keeps the split it was first given.

Memory: the planner remembers the split of a group only when the group is `shared` (it occurs
under more than one intent; an export asks the database which ones do), so it holds one intent
at a time plus the shared groups, whatever the size of the export. Without `shared` it
remembers every group.
"""

import bisect
import functools
import itertools
import json
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

    def __init__(self, *, ratios: dict[str, float], seed: int, intent_label=str, shared: set[int] | None = None):
        self.names = sorted(ratios, key=split_order)
        self.shares = [ratios[name] for name in self.names]
        self.salt = _mix64(seed)
        self.intent_label = intent_label
        self.shared = shared
        self.assignment: dict[int, int] = {}
        self.warnings: list[str] = []

    def key(self, text: str) -> int:
        """The near-duplicate key of a text whose stored key is missing; it is remembered as shared,
        since the database could not say where else it occurs."""
        key = near_duplicate_key(text)
        if self.shared is not None:
            self.shared.add(key)
        return key

    def place(self, intent_id: int, keys: list[int]) -> list[int]:
        """The part index of each of an intent's questions, given their near-duplicate keys.

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
        # Mixed with the seed, the keys' order is a seeded shuffle of the groups (the mix is a
        # bijection, so orders are distinct). Hand the groups out in that order: the first ones up
        # to the first part's remaining room to it, and so on; a group goes to the part where it
        # starts, so it is never cut in two.
        salt = self.salt
        order = [((key ^ salt) * _GOLDEN) & _M64 for key in free]
        by_order = dict(zip(order, free, strict=True))
        free = list(map(by_order.__getitem__, sorted(order)))
        starts = list(itertools.accumulate(map(groups.__getitem__, free), initial=0))
        room = [max(target - got, 0) for target, got in zip(split_targets(n, self.shares), filled, strict=True)]
        bounds = list(itertools.accumulate(room))
        bounds[last] = float("inf")  # whatever is left goes to the last part
        parts = list(map(functools.partial(bisect.bisect_right, bounds), starts[:-1]))
        placed.update(zip(free, parts, strict=True))
        for part in range(last + 1):  # parts are in order along `free`: one run of groups each
            first, end = bisect.bisect_left(parts, part), bisect.bisect_left(parts, part + 1)
            filled[part] += starts[end] - starts[first]
        if self.shared is None:
            remembered.update(placed)
        elif self.shared:
            remembered.update((key, placed[key]) for key in self.shared.intersection(free))
        # A part given no share (the assigned mode's parts that take no unassigned rows) is not short.
        empty = [self.names[i] for i in range(len(self.names)) if filled[i] == 0 and self.shares[i] > 0]
        if empty:
            self.warnings.append(
                f"Intent {self.intent_label(intent_id)} has {n} question{'s' if n != 1 else ''} "
                f"({len(groups)} distinct), too few for this split: {', '.join(empty)} "
                f"get{'s' if len(empty) == 1 else ''} none of it."
            )
        return list(map(placed.__getitem__, keys))

    def split_of(self, text: str) -> str:
        """The part a text went to (for texts already placed by a planner that remembers all)."""
        return self.names[self.assignment[near_duplicate_key(text)]]


def split_plan(*, rows: Iterable[tuple[int, str]], ratios: dict[str, float], seed: int,
               intent_label=str) -> SplitPlanner:
    """Plan a split of `rows`, (intent_id, text) pairs grouped by intent. Intents too small for
    every part to get a question are reported in `warnings`; their questions are still placed."""
    planner = SplitPlanner(ratios=ratios, seed=seed, intent_label=intent_label)
    for intent_id, pairs in itertools.groupby(rows, key=lambda r: r[0]):
        planner.place(intent_id, [planner.key(text) for _, text in pairs])
    return planner
