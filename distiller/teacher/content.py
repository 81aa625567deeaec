"""What the teacher says: valid, varied, deterministic answers to the engine's prompts."""

import hashlib
import json
import random

from datasets.normalize import normalize_text
from distiller.prompts import REQUEST_MARKER
from distiller.teacher.vocabulary import EDGE_SUFFIX, LONG_TAIL, QUESTION_PARTS, TAXONOMY_WORDS

# Any two indices below this differ in at least two of the four sentence parts (see vocabulary.py).
DISTINCT_SPAN = 990


def stable_rng(*parts) -> random.Random:
    digest = hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def request_of(messages: list[dict]) -> dict | None:
    """The JSON parameters our prompts end with, or None for a foreign prompt."""
    for message in reversed(messages):
        content = message.get("content") or ""
        if isinstance(content, list):  # content parts
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        at = content.rfind(REQUEST_MARKER)
        if at >= 0:
            try:
                return json.loads(content[at + len(REQUEST_MARKER):].strip().splitlines()[0])
            except (json.JSONDecodeError, IndexError):
                return None
    return None


def taxonomy_answer(request: dict, seed: int) -> dict:
    words = TAXONOMY_WORDS.get(request.get("language"), TAXONOMY_WORDS["en"])
    parent_path = request.get("parent_path") or []
    rng = stable_rng(seed, "taxonomy", request.get("topic"), parent_path)
    taken = {normalize_text(name) for name in request.get("existing") or []}
    joiner = "" if request.get("language") == "zh" else " "
    if parent_path:
        pool = [f"{q}{joiner}{s if joiner == '' else s.lower()}" for q in words["qualifiers"] for s in words["subjects"]]
    else:
        pool = list(words["subjects"])
    rng.shuffle(pool)
    parent = parent_path[-1] if parent_path else request.get("topic", "")
    intents = []
    for name in pool:
        if len(intents) >= int(request.get("count", 5)):
            break
        if normalize_text(name) in taken:
            continue
        taken.add(normalize_text(name))
        intents.append({"name": name, "description": words["describe"].format(name=name.lower(), parent=parent)})
    return {"intents": intents}


# Languages written without spaces between words: (comma, question mark, ellipsis).
UNSPACED = {"zh": ("，", "？", "……"), "ja": ("、", "？", "…")}


def _sentence(language: str, index: int, intent: str, edge_case: str) -> str:
    parts = QUESTION_PARTS.get(language, QUESTION_PARTS["en"])
    opener = parts["openers"][index % 10]
    core = parts["cores"][index % 11].format(intent=intent)
    detail = parts["details"][index % 13]
    closer = parts["closers"][index % 9]
    comma, question_mark, ellipsis = UNSPACED.get(language, ("", "", ""))
    if comma:
        text = f"{opener}{detail}{comma}{core}{closer}"
        short = f"{intent}{comma}{detail}{question_mark}"
    else:
        end = core[-1] if core[-1] in "?.!" else ""
        body = core[:-1].rstrip() if end else core
        text = f"{opener} {body} {detail}{end} {closer}"
        short = f"{intent} {detail}?"
    if edge_case == "very_short":
        return short
    if edge_case == "very_long":
        return text + LONG_TAIL.get(language, LONG_TAIL["en"])
    if edge_case == "mixed_language":
        return text + EDGE_SUFFIX.get(language, EDGE_SUFFIX["en"])
    if edge_case == "typos" and len(text) > 12:
        at = 3 + index % (len(text) - 8)
        return text[:at] + text[at + 1] + text[at] + text[at + 2:]
    if edge_case == "ambiguous":
        return f"{opener}{detail}{ellipsis}{intent}{question_mark}" if comma else f"{opener} {detail}… {intent}?"
    return text


def questions_answer(request: dict, seed: int) -> dict:
    language = request.get("language") or "en"
    path = request.get("intent_path") or ["something"]
    intent = path[-1] if language in ("zh", "de") else path[-1].lower()
    items = request.get("items") or []
    # Seeded by what the batches of one round share, and offset by each item's number, so the
    # concurrent batches of a round pick different sentences instead of colliding by chance.
    rng = stable_rng(seed, "questions", path, request.get("existing"))
    base = rng.randrange(DISTINCT_SPAN)
    taken = {normalize_text(text) for text in request.get("existing") or []}
    questions = []
    for offset, item in enumerate(items):
        number = item.get("n", offset + 1) if isinstance(item.get("n"), int) else offset + 1
        for bump in range(50):
            index = (base + number + bump * 97) % DISTINCT_SPAN
            text = _sentence(language, index, intent, item.get("edge_case", "none"))
            if normalize_text(text) not in taken:
                break
        taken.add(normalize_text(text))
        questions.append({"n": item.get("n", offset + 1), "text": text})
    return {"questions": questions}


def judge_disagrees(text: str, seed: int, rate: float) -> bool:
    """Whether the teacher's judge puts `text` under another intent (a fixed share `rate` of texts, by their hash)."""
    return bool(rate) and stable_rng(seed, "judge", normalize_text(text)).random() < rate


def judge_answer(request: dict, seed: int, disagree_rate: float) -> dict:
    """The intent each question was written for, except a `disagree_rate` share put under a neighbour (or none)."""
    candidates = [c.get("name", "") for c in request.get("candidates") or []]
    own = request.get("intent") or (candidates[0] if candidates else "none")
    verdicts = []
    for item in request.get("questions") or []:
        text = item.get("text", "")
        if judge_disagrees(text, seed, disagree_rate):
            other = next((name for name in candidates if name != own), "none")
            verdicts.append({"n": item.get("n"), "intent": other, "naturalness": 4,
                             "reason": f"It asks about {other}, not {own}."})
        else:
            verdicts.append({"n": item.get("n"), "intent": own, "naturalness": 4, "reason": "Clearly this intent."})
    return {"verdicts": verdicts}


def refine_answer(request: dict) -> dict:
    path = request.get("intent_path") or ["it"]
    return {"questions": [{"n": item.get("n"), "text": f"{item.get('text', '').rstrip()} I mean {path[-1].lower()}, "
                                                     "to be clear."}
                          for item in request.get("items") or []]}


def answer_payload(messages: list[dict], seed: int, judge_disagree_rate: float = 0.0) -> dict:
    request = request_of(messages)
    if request is None:
        return {"answer": "I am the test teacher; I only understand the distiller's prompts."}
    task = request.get("task")
    if task == "taxonomy":
        return taxonomy_answer(request, seed)
    if task == "judge":
        return judge_answer(request, seed, judge_disagree_rate)
    if task == "refine":
        return refine_answer(request)
    if task == "out_of_scope":
        topic = request.get("topic") or "this service"
        return questions_answer({**request, "intent_path": [f"something unrelated to {topic}"]}, seed)
    contrast = request.get("contrast")
    if contrast:
        # Hard negatives: the neighbour's words, this intent's request.
        other = str(contrast.get("name", "")).split(" -> ")[-1].lower()
        answer = questions_answer(request, seed)
        for item in answer["questions"]:
            item["text"] = f"{item['text']} Not {other}, though."
        return answer
    return questions_answer(request, seed)


def render(payload: dict, *, strict_json: bool, seed: int, body_key: str) -> str:
    """JSON as a strict-schema server sends it; otherwise sometimes wrapped the way real models do."""
    text = json.dumps(payload, ensure_ascii=False)
    if strict_json:
        return text
    wrapping = stable_rng(seed, "wrap", body_key).randrange(3)
    if wrapping == 1:
        return f"Sure! Here is the JSON you asked for:\n```json\n{text}\n```\nLet me know if you need more."
    if wrapping == 2:
        return f"<think>The user wants JSON. I will list the items.</think>\n{text}"
    return text
