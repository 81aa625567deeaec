"""The diversity mix: how a run spreads its questions over styles, complexity, audiences and edge cases.

A mix is a dict of weights per dimension; each requested question gets one value per dimension,
drawn by a seeded RNG so a run's requests are reproducible. The drawn values are stored on the
question.
"""

import random

DEFAULT_MIX = {
    "style": {"direct question": 3, "request": 2, "problem description": 2, "casual chat": 1, "polite formal": 1},
    "complexity": {"simple": 4, "moderate": 4, "complex": 2},
    "audience": {"general": 4, "beginner": 2, "intermediate": 2, "expert": 1, "child": 1},
    "edge_case": {"none": 14, "typos": 2, "very_short": 1, "very_long": 1, "ambiguous": 1, "mixed_language": 1},
}
DIMENSIONS = tuple(DEFAULT_MIX)


def mix_validate(mix: dict | None) -> dict:
    """The default mix overlaid with `mix`; raises ValueError naming a bad dimension or weight."""
    result = {dim: dict(weights) for dim, weights in DEFAULT_MIX.items()}
    for dim, weights in (mix or {}).items():
        if dim not in DEFAULT_MIX:
            raise ValueError(f"Unknown mix dimension {dim!r}; use {', '.join(DIMENSIONS)}.")
        if not isinstance(weights, dict) or not weights:
            raise ValueError(f"Mix {dim!r} must map values to weights, e.g. {DEFAULT_MIX[dim]}.")
        clean = {}
        for value, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
                raise ValueError(f"Mix {dim}.{value} must be a weight >= 0.")
            if weight > 0:
                clean[str(value)[:30]] = float(weight)
        if not clean:
            raise ValueError(f"Mix {dim!r} needs at least one positive weight.")
        result[dim] = clean
    return result


def mix_draw(mix: dict, rng: random.Random) -> dict:
    """One question's values, one per dimension."""
    return {dim: rng.choices(list(weights), weights=list(weights.values()))[0] for dim, weights in mix.items()}
