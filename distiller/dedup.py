"""Near-duplicate detection by character n-gram shingles and Jaccard similarity.

"How do I reset my password?" and "how can I reset my password" normalize to different
strings (so the exact hash keeps both) but share most of their 3-grams. Character shingles work
for every language, including Chinese, without a tokenizer. An inverted index from shingle to
texts makes each lookup touch only texts that share a shingle, so the similarity is exact and
cheap at the sizes of one intent (thousands of texts).
"""

from collections import defaultdict

from datasets.normalize import normalize_text

DEFAULT_THRESHOLD = 0.85
SHINGLE_SIZE = 3


def shingles(text: str, size: int = SHINGLE_SIZE) -> frozenset[str]:
    normalized = normalize_text(text)
    if len(normalized) <= size:
        return frozenset([normalized]) if normalized else frozenset()
    return frozenset(normalized[i:i + size] for i in range(len(normalized) - size + 1))


def jaccard(a: frozenset, b: frozenset) -> float:
    if not a or not b:
        return 0.0
    overlap = len(a & b)
    return overlap / (len(a) + len(b) - overlap)


class NearDuplicateIndex:
    """Texts seen so far; `add` refuses a text whose Jaccard similarity to one of them reaches the threshold."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, size: int = SHINGLE_SIZE):
        self.threshold = threshold
        self.size = size
        self._sets: list[frozenset[str]] = []
        self._postings: dict[str, list[int]] = defaultdict(list)

    def __len__(self):
        return len(self._sets)

    def most_similar(self, text: str) -> float:
        grams = shingles(text, self.size)
        overlaps: dict[int, int] = defaultdict(int)
        for gram in grams:
            for index in self._postings.get(gram, ()):
                overlaps[index] += 1
        best = 0.0
        for index, overlap in overlaps.items():
            best = max(best, overlap / (len(grams) + len(self._sets[index]) - overlap))
        return best

    def is_near_duplicate(self, text: str) -> bool:
        return self.most_similar(text) >= self.threshold

    def add(self, text: str, *, force: bool = False) -> bool:
        """Index `text` unless it is a near duplicate (always with `force`). Returns whether it was added."""
        if not force and self.is_near_duplicate(text):
            return False
        grams = shingles(text, self.size)
        index = len(self._sets)
        self._sets.append(grams)
        for gram in grams:
            self._postings[gram].append(index)
        return True
