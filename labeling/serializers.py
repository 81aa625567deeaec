"""Typed request and response shapes of the review and captures API."""

import difflib

from rest_framework import serializers

from config.serializers import IdField, InputSerializer, StrictFloatField, StrictPrimaryKeyRelatedField
from datasets.models import (
    LANGUAGE_CHOICES,
    QUESTION_TEXT_MAX_CHARS,
    REVIEW_REASON_MAX_CHARS,
    IntentNode,
    Question,
    ReviewEvent,
    Topic,
)
from labeling.selectors import QuestionFilter


class SimilarQuestionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    status = serializers.CharField()
    intent_id = serializers.IntegerField()
    intent_number = serializers.CharField()
    other_intent = serializers.BooleanField(help_text="Under another intent than the question: a possible label conflict.")
    score = serializers.FloatField(help_text="1.0 for the same words (near-duplicate key); a paraphrase's Jaccard "
                                             "similarity of word shingles; else trigram similarity.")
    near_copies = serializers.IntegerField(
        help_text="A paraphrase stands for its near-duplicate group: how many other questions of the topic have "
                  "its near-duplicate key (not listed; counted up to 999). 0 for the other rows.")


class IntentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    name = serializers.CharField()
    full_name = serializers.CharField(help_text='"2.1 Refunds"')
    path = serializers.CharField(help_text='"Customer Support -> 2 Billing -> 2.1 Refunds"')


class ReviewQuestionSerializer(serializers.ModelSerializer):
    """One question as the review screen shows it (built by labeling.selectors.review_question)."""

    intent = IntentRefSerializer(source="intent_ref")
    original_intent = IntentRefSerializer(source="original_intent_ref", allow_null=True)
    predicted_intent = IntentRefSerializer(source="predicted_intent_ref", allow_null=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    leased_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    similar = SimilarQuestionSerializer(many=True, read_only=True,
                                        help_text="Nearest existing questions (possible duplicates); "
                                                  "only when asked for (?similar=1).")
    label_issue = serializers.JSONField(
        read_only=True, allow_null=True,
        help_text="A likely label error found by the topic's latest evaluation: the suggested intent and its "
                  "confidence, the given intent's confidence, the rank; null when there is none.")

    judge = serializers.JSONField(
        read_only=True, allow_null=True,
        help_text="The LLM judge's verdict, score, reason, model and prompt version, and its intent when it differs "
                  "from the question's; null when not judged.")
    overlap = serializers.JSONField(
        read_only=True, allow_null=True,
        help_text='{"reviewers": k} when k reviewers decide this pending question independently (the others\' '
                  "decisions are never shown); null otherwise.")
    contrastive_of = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True,
                                                        help_text="A hard negative: the neighbouring intent.")

    class Meta:
        model = Question
        fields = [
            "id", "topic", "text", "language", "source", "status", "version", "intent", "original_intent",
            "original_text", "predicted_intent", "confidence", "occurrences", "run", "provider", "model",
            "temperature", "prompt_version", "style", "complexity", "audience", "edge_case", "transformation", "reviewed_by",
            "reviewed_at", "leased_by", "lease_expires_at", "created_at", "similar", "label_issue", "judge",
            "contrastive_of", "overlap",
        ]
        read_only_fields = fields


class NextQuestionSerializer(serializers.Serializer):
    question = ReviewQuestionSerializer(allow_null=True)
    remaining = serializers.IntegerField(
        help_text="Pending questions of this queue (topic and filter) you can still get, the returned one "
                  "included: free ones and those reserved for you. Counted up to 1,000; 1000 means at least.")


def unknown_filter_message(name: str, known: list[str]) -> str:
    better = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    if better:
        return f"Unknown filter {name}: did you mean {better[0]}?"
    return f"Unknown filter {name}; the filters are {', '.join(known)}."


class ReviewRequestSerializer(InputSerializer):
    action = serializers.ChoiceField(choices=[a for a in ReviewEvent.Action.values if a != "reset"])
    intent = IdField(required=False, allow_null=True, help_text="New intent id (relabel).")
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=True,
                                 max_length=QUESTION_TEXT_MAX_CHARS, help_text="New text (edit).")
    version = IdField(
 help_text="The question's `version` as you loaded it (required); a stale one answers 409.",
        error_messages={
            "required": "Send the version of the question you loaded (its `version` field): every review "
                        "checks it, so a change made meanwhile is never overwritten.",
            "null": "Send the version of the question you loaded (its `version` field), not null.",
        })
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=REVIEW_REASON_MAX_CHARS,
        help_text="Why (reject, flag): one of the topic's review_reasons or your own words; stored on the review event.")
    next = serializers.BooleanField(required=False, default=False,
                                    help_text="Also reserve and return the next question of the topic's queue.")
    queue = serializers.ChoiceField(
        choices=["review", "second_opinion"], required=False, default="review",
        help_text="With next: the queue to serve from; second_opinion (flagged questions) is for topic leads "
                  "and dataset admins.")
    filter = serializers.DictField(required=False, child=serializers.CharField(allow_blank=True),
                                   help_text="Narrows the next question like the list filters (intent, source...).")
    skip = serializers.ListField(
        child=IdField(), required=False, max_length=200,
        help_text="With next: the ids you passed over, the one passed over longest ago first (as ?skip= on "
                  "review/next/); they come back only after every other question.")

    def validate_filter(self, value):
        known = [name for name in QuestionFilter.field_names() if name != "status"]
        unknown = [name for name in value if name not in known and name != "status"]
        if unknown:
            raise serializers.ValidationError(
                "; ".join(unknown_filter_message(name, known) for name in unknown))
        return value

    def validate(self, data):
        if data["action"] == "relabel" and data.get("intent") is None:
            raise serializers.ValidationError({"intent": "Relabel needs the new intent id."})
        if data["action"] == "edit" and not (data.get("text") or "").strip():
            raise serializers.ValidationError({"text": "Edit needs the new text."})
        return data


class ReviewResponseSerializer(serializers.Serializer):
    question = ReviewQuestionSerializer()
    next = ReviewQuestionSerializer(allow_null=True, help_text="The next question when the request asked for it.")
    remaining = serializers.IntegerField(
        required=False, help_text="With next: what is left in the queue for you, as review/next counts it.")


class UndoRequestSerializer(InputSerializer):
    topic = IdField(help_text="The topic whose latest action of yours to undo.")
    release = IdField(required=False, allow_null=True,
                      help_text="The question you have on screen: its reservation is given back at once.")


class ReviewerDaySerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    day = serializers.DateField()
    decisions = serializers.IntegerField(help_text="Approve, reject, flag and relabel decisions (overlap votes too).")
    actions = serializers.DictField(child=serializers.FloatField(), help_text="Share of each action, 0-1.")
    seconds_per_decision = serializers.FloatField(
        allow_null=True, help_text="Pace: median seconds between two decisions; pauses over 5 minutes left out.")
    undos = serializers.IntegerField()
    undo_rate = serializers.FloatField(allow_null=True, help_text="Undos per decision.")
    agreement_with_others = serializers.FloatField(
        allow_null=True, help_text="Share of comparisons with the other reviewers of the same overlapping question "
                                   "where they decided the same.")
    compared = serializers.IntegerField()
    agreement_with_adjudication = serializers.FloatField(
        allow_null=True, help_text="Share of their votes in a disagreement that the lead's adjudication upheld.")
    adjudicated = serializers.IntegerField()


class ReviewerFiguresSerializer(serializers.Serializer):
    topic = serializers.IntegerField()
    days = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=["topic", "own"],
                                    help_text="topic: every reviewer (leads, dataset admins); own: yours only.")
    reviewers = ReviewerDaySerializer(many=True)
    agreement = serializers.JSONField(
        allow_null=True, help_text="Overall, per reviewer pair (Cohen's kappa) and per intent (Fleiss' kappa) on "
                                   "the overlapping questions; null for a reviewer.")


class LeaseSerializer(serializers.Serializer):
    question = serializers.IntegerField(source="pk")
    leased_by = serializers.CharField(source="leased_by.username", read_only=True)
    lease_expires_at = serializers.DateTimeField()


class CaptureSerializer(InputSerializer):
    """One production query: the topic, the text, the deployed model's intent and confidence."""

    topic = StrictPrimaryKeyRelatedField(queryset=Topic.objects.all())
    text = serializers.CharField(max_length=QUESTION_TEXT_MAX_CHARS, trim_whitespace=True)
    predicted_intent = serializers.JSONField(
        help_text='The predicted intent: its id (a number, 12) or its dotted number (a string, "2.1").')
    confidence = StrictFloatField(min_value=0.0, max_value=1.0)
    language = serializers.ChoiceField(choices=LANGUAGE_CHOICES, required=False,
                                       help_text="Defaults to the topic's language.")

    def validate(self, data):
        topic, raw = data["topic"], data["predicted_intent"]
        intents = IntentNode.objects.filter(topic=topic)
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise serializers.ValidationError({"predicted_intent": "Give the intent's id (number) or number (string)."})
        intent = intents.filter(pk=raw).first() if isinstance(raw, int) else intents.filter(number=raw.strip()).first()
        if intent is None:
            raise serializers.ValidationError({"predicted_intent": f"Topic {topic.pk} has no intent {raw!r}."})
        data["predicted_intent"] = intent
        return data


class CaptureOutcomeSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=["queued", "repeat", "counted", "known"],
        help_text="queued: new item in the review queue; repeat: an existing capture's counter went up; "
                  "counted: at or above the topic's threshold, not queued; known: the topic already has "
                  "this question from another source.")
    question = serializers.IntegerField(source="question_id", allow_null=True)
    occurrences = serializers.IntegerField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True)


class CaptureResultSerializer(serializers.Serializer):
    results = CaptureOutcomeSerializer(many=True)
    queued = serializers.IntegerField()
    repeat = serializers.IntegerField()
    counted = serializers.IntegerField()
    known = serializers.IntegerField()
