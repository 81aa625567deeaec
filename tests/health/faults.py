"""A JSONL file from CLINC150 with injected faults, and what the report must find in it."""

import json

from datasets.clinc150 import DEFAULT_PATH

DATA_FILE = DEFAULT_PATH / "data_full.json"

INTENTS = ("balance", "credit_score", "weather", "alarm", "translate")
PER_INTENT = 20
SMALL_INTENT = "goodbye"  # injected: an intent with 2 questions
EXACT_DUPLICATES = [("balance", 0, "  {}!! "), ("weather", 3, "{}")]  # (intent, index, how the copy is written)
CONFLICTS = [("alarm", 1, "weather"), ("alarm", 2, "balance"), ("translate", 4, "credit_score")]  # 3 texts, 2 intents
PARAPHRASES = [  # across intents: another near key, word shingles alike
    ("how much money is left in my checking account this month", "balance",
     "how much money is left in my savings account this month", "credit_score"),
    ("will it rain in the city where my alarm clock was made", "alarm",
     "will it rain in the city where my alarm clock was bought", "weather"),
]
GERMAN = [("wie ist das wetter heute in berlin", "weather"), ("was ist mein kontostand bitte", "balance"),
          ("wie hoch ist meine kreditwürdigkeit", "credit_score")]


def fault_rows() -> list[dict]:
    data = json.loads(DATA_FILE.read_text())
    by_intent: dict[str, list[str]] = {}
    for text, label in data["train"]:
        if label in INTENTS or label == SMALL_INTENT:
            by_intent.setdefault(label, []).append(text)
    rows = [{"question": text, "intent": intent} for intent in INTENTS for text in by_intent[intent][:PER_INTENT]]
    rows += [{"question": text, "intent": SMALL_INTENT} for text in by_intent[SMALL_INTENT][:2]]
    for intent, index, template in EXACT_DUPLICATES:
        rows.append({"question": template.format(by_intent[intent][index].upper()), "intent": intent})
    for intent, index, other in CONFLICTS:
        rows.append({"question": by_intent[intent][index], "intent": other})
    for a, a_intent, b, b_intent in PARAPHRASES:
        rows += [{"question": a, "intent": a_intent}, {"question": b, "intent": b_intent}]
    rows += [{"question": text, "intent": intent} for text, intent in GERMAN]
    return rows


def fault_jsonl() -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in fault_rows()).encode()
