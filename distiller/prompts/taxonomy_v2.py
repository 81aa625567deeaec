"""Child intents of one node, version 2.

Changed from version 1: sends the topic's and the parent's descriptions and the taxonomy built
so far (outside the siblings), so branches do not overlap; every piece of data is sent once, in
the request JSON the instructions refer to."""

import json

from distiller.prompts.taxonomy_v1 import Answer, Intent  # noqa: F401 (the same answer shape)

VERSION = "taxonomy-v2"
EST_TOKENS_IN = 520
EST_TOKENS_OUT_PER_ITEM = 45
EXAMPLE = {"intents": [{"name": "Refund Status", "description": "The user wants to know where their refund is."}]}


def messages(*, topic: str, parent_path: list[str], count: int, language: str, existing: list[str],
             topic_description: str = "", parent_description: str = "", tree: list[str] = ()) -> list[dict]:
    """`existing`: the parent's children so far; `tree`: the paths of every other intent of the topic."""
    from distiller.prompts import REQUEST_MARKER, language_name

    lang = language_name(language)
    system = (
        "You design intent taxonomies for the assistants of real businesses. An intent is one thing a "
        "user wants to get done; sibling intents must not overlap, and together they should cover what "
        f"users actually ask about. Write every name and description in natural {lang}, the way a "
        f"native {lang} product team would label them."
    )
    where = "the intent at parent_path" if parent_path else "the topic"
    user = (
        f"Propose `count` distinct sub-intents of {where} in the request below. They must be more specific "
        "than their parent, differ from its existing children (`existing`), and not overlap any intent "
        "elsewhere in the taxonomy built so far (`tree`, one path per intent). Use the descriptions of "
        f"the topic and the parent to stay within their scope. Give each a short name and a one-sentence "
        f"description, in {lang}.\n\n"
        f"{REQUEST_MARKER} " + json.dumps({
            "task": "taxonomy", "topic": topic, "topic_description": topic_description,
            "parent_path": parent_path, "parent_description": parent_description, "count": count,
            "language": language, "existing": existing, "tree": list(tree),
        }, ensure_ascii=False)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
