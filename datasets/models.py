"""Topics, their intent taxonomy, questions, the review audit trail and exports."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from config.storage import export_storage
from datasets.normalize import near_duplicate_key, text_hash

LANGUAGE_CHOICES = [
    ("en", "English"),
    ("zh", "Chinese"),
    ("de", "German"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("it", "Italian"),
    ("ja", "Japanese"),
    ("pt", "Portuguese"),
    ("ru", "Russian"),
    ("ko", "Korean"),
]
PATH_SEPARATOR = " -> "
# One limit for a question's text wherever it comes from: the API, imports, captures, review edits.
QUESTION_TEXT_MAX_CHARS = 5000
# The review screen's one-key reasons for a reject or a flag, until a topic sets its own.
DEFAULT_REVIEW_REASONS = ["Wrong intent", "Unnatural", "Duplicate", "Ambiguous", "Out of scope", "Offensive"]
REVIEW_REASON_MAX_CHARS = 500


def default_review_reasons() -> list[str]:
    return list(DEFAULT_REVIEW_REASONS)


class Topic(models.Model):
    """The root of a dataset: "Customer Support", with its generation defaults."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    language = models.CharField(max_length=8, choices=LANGUAGE_CHOICES, default="en")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_topics"
    )
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="review_topics",
        help_text="Reviewers assigned to this topic; only they see its review queue.",
    )
    # Generation defaults (the seed tool's distill-auto options).
    levels = models.PositiveSmallIntegerField(default=2, validators=[MinValueValidator(1), MaxValueValidator(6)])
    tags_per_level = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(50)])
    questions_per_intent = models.PositiveIntegerField(default=20, validators=[MinValueValidator(1), MaxValueValidator(10000)])
    leaf_only = models.BooleanField(default=True, help_text="Generate questions for leaf intents only.")
    # Review settings.
    target_per_intent = models.PositiveIntegerField(default=200, help_text="Approved questions wanted per intent.")
    confidence_threshold = models.FloatField(
        default=0.7, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Captured production queries below this confidence enter the review queue.",
    )
    # Reviewer guidance and oversight (labeling app).
    guidelines = models.TextField(
        blank=True, help_text="Labeling guidelines in Markdown, shown on the review screen (key g). "
                              "HTML in it is shown as text, never run.")
    review_reasons = models.JSONField(
        default=default_review_reasons, blank=True,
        help_text='Common reasons for a reject or a flag, one key each (1-9) on the review screen: '
                  'a JSON list of words, e.g. ["Wrong intent", "Unnatural"].')
    # Overlap: this share of the questions is decided independently by `overlap_reviewers` reviewers
    # before the decision counts (labeling.services.overlap); 0 keeps one reviewer per question.
    overlap_share = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of questions (0-1) each decided independently by several reviewers; disagreements go to "
                  "a lead. 0: one reviewer decides, 1: every question.")
    overlap_reviewers = models.PositiveSmallIntegerField(
        default=2, choices=[(2, "2 reviewers"), (3, "3 reviewers")],
        help_text="How many reviewers decide each overlapping question.")
    leads = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="lead_topics",
        help_text="Topic leads: reviewers of this topic who also give the second opinion on flagged questions "
                  "and see every reviewer's figures.")
    # Evaluation gates (evaluation app): what a trained baseline must reach on this topic's data.
    gate_accuracy = models.FloatField(
        default=0.90, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Overall accuracy an evaluation must reach to pass.",
    )
    gate_intent = models.FloatField(
        default=0.85, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Score (F1) every intent must reach to pass.",
    )
    # The domain template the topic started from: its runs ask for the preset's styles and audiences.
    preset = models.ForeignKey("TopicPreset", null=True, blank=True, on_delete=models.SET_NULL, related_name="topics")
    # Lifecycle (datasets/lifecycle.py): an archived topic is read-only and out of queues and lists;
    # a topic being deleted is hidden and frozen until its deletion job removes it.
    archived_at = models.DateTimeField(null=True, blank=True, editable=False)
    deletion_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        reasons = self.review_reasons
        if not isinstance(reasons, list) or not all(isinstance(r, str) and r.strip() for r in reasons):
            raise ValidationError({"review_reasons": 'Give a JSON list of words, e.g. ["Wrong intent", "Duplicate"].'})
        if len(reasons) > 9:
            raise ValidationError({"review_reasons": f"At most 9 reasons (keys 1-9); this list has {len(reasons)}."})
        if any(len(r) > REVIEW_REASON_MAX_CHARS for r in reasons):
            raise ValidationError({"review_reasons": f"A reason holds at most {REVIEW_REASON_MAX_CHARS} characters."})

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def is_deleting(self) -> bool:
        return self.deletion_started_at is not None


class IntentNode(models.Model):
    """One intent in a topic's taxonomy, numbered like "2.1" by its place in the tree."""

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="intents")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    number = models.CharField(max_length=64, help_text='Dotted position in the tree, e.g. "2.1".')
    # Zero-padded number ("0002.0001") so the tree sorts in reading order with one ORDER BY.
    sort_key = models.CharField(max_length=255, editable=False, db_index=True)
    depth = models.PositiveSmallIntegerField(default=1)
    position = models.PositiveIntegerField(default=1, help_text="Order among siblings, from 1.")
    # Set when a distillation run generated the intent (blank for intents made by hand or imported).
    run = models.ForeignKey("distiller.DistillationRun", null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="intents")
    prompt_version = models.CharField(max_length=50, blank=True)
    out_of_scope = models.BooleanField(
        default=False,
        help_text="Holds out-of-scope queries (CLINC150's oos): left out of exports and evaluations unless asked for.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["topic_id", "sort_key"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "number"], name="intent_unique_number_per_topic"),
            models.UniqueConstraint(
                "parent", Lower("name"), condition=Q(parent__isnull=False), name="intent_unique_child_name"
            ),
            models.UniqueConstraint(
                "topic", Lower("name"), condition=Q(parent__isnull=True), name="intent_unique_root_name"
            ),
        ]
        indexes = [models.Index(fields=["topic", "parent", "position"], name="intent_siblings_idx")]

    def __str__(self):
        return self.intent_full_name

    def save(self, *args, **kwargs):
        self.sort_key = self.sort_key_for(self.number)
        self.depth = self.number.count(".") + 1
        super().save(*args, **kwargs)

    @staticmethod
    def sort_key_for(number: str) -> str:
        return ".".join(part.zfill(4) for part in number.split("."))

    def clean(self):
        if self.parent_id and self.parent.topic_id != self.topic_id:
            raise ValidationError({"parent": "The parent intent belongs to another topic."})
        siblings = IntentNode.objects.filter(topic_id=self.topic_id, parent_id=self.parent_id, name__iexact=self.name)
        if siblings.exclude(pk=self.pk).exists():
            raise ValidationError({"name": f"An intent named {self.name!r} already exists at this level."})

    # The seed tool's fields. `ancestors()` walks up the tree; exports use
    # datasets.selectors.intent_paths() to compute these for a whole topic at once.
    def ancestors(self) -> list["IntentNode"]:
        chain, node = [], self
        while node is not None:
            chain.append(node)
            node = node.parent
        return list(reversed(chain))

    @property
    def intent_full_name(self) -> str:
        return f"{self.number} {self.name}"

    @property
    def intent_hierarchy(self) -> list[str]:
        return [self.topic.name] + [node.name for node in self.ancestors()]

    @property
    def intent_path(self) -> str:
        return PATH_SEPARATOR.join(self.intent_hierarchy)

    @property
    def intent_numbered_path(self) -> str:
        return PATH_SEPARATOR.join([self.topic.name] + [n.intent_full_name for n in self.ancestors()])

    @property
    def is_leaf(self) -> bool:
        return not self.children.exists()


class Question(models.Model):
    """One labeled sample: a user question and its intent."""

    class Source(models.TextChoices):
        GENERATED = "generated", "Generated"
        IMPORTED = "imported", "Imported"
        CAPTURED = "captured", "Captured"
        MANUAL = "manual", "Manual"
        # Offline variants of approved questions (datasets/augment.py): typos, casing, chat spelling...
        AUGMENTED = "augmented", "Augmented"

    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VALIDATION = "validation", "Validation"
        TEST = "test", "Test"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        RELABELED = "relabeled", "Relabeled"
        FLAGGED = "flagged", "Flagged"

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="questions")
    intent = models.ForeignKey(IntentNode, on_delete=models.PROTECT, related_name="questions")
    text = models.TextField()
    text_hash = models.CharField(max_length=40, editable=False, help_text="SHA-1 of the normalized text.")
    near_key = models.BigIntegerField(
        null=True, editable=False,
        help_text="Near-duplicate key (bag of words without numbers and filler): what the split keeps together.")
    language = models.CharField(max_length=8, choices=LANGUAGE_CHOICES, default="en")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.MANUAL)
    split = models.CharField(
        max_length=16, choices=Split.choices, blank=True, default="",
        help_text="The dataset's own split (e.g. CLINC150's official test set); blank: placed by the export's plan.")

    # Generation metadata.
    run = models.ForeignKey(
        "distiller.DistillationRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="questions"
    )
    provider = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    temperature = models.FloatField(null=True, blank=True)
    prompt_version = models.CharField(max_length=50, blank=True)
    style = models.CharField(max_length=50, blank=True)
    complexity = models.CharField(max_length=20, blank=True)
    audience = models.CharField(max_length=20, blank=True)
    edge_case = models.CharField(max_length=30, blank=True)

    # Captured production queries: what the deployed model said, and how often we saw it.
    predicted_intent = models.ForeignKey(
        IntentNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="predicted_questions"
    )
    confidence = models.FloatField(null=True, blank=True)
    occurrences = models.PositiveIntegerField(default=1)

    # Offline augmentation (datasets/augment.py): what was done to which approved question.
    # db_default too: raw INSERTs that predate the column (bench loaders) still write rows.
    transformation = models.CharField(
        max_length=200, blank=True, default="", db_default="",
        help_text='How an augmented question was made from its source, e.g. "typo:swap" or "case:upper+filler:um".')
    augmented_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="augmentations",
        help_text="The approved question an augmented one is a variant of.")

    # Near-boundary ("hard negative") questions: the neighbouring intent this one is written against.
    contrastive_of = models.ForeignKey(
        IntentNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="contrastive_questions")

    # The LLM judge's verdict (distiller.services.judge): blank until judged.
    class JudgeVerdict(models.TextChoices):
        PASS = "pass", "Pass"
        OTHER_INTENT = "other_intent", "Belongs to another intent"
        NO_INTENT = "no_intent", "Belongs to none of the intents"
        LOW_SCORE = "low_score", "Below the run's threshold"

    judge_verdict = models.CharField(max_length=16, choices=JudgeVerdict.choices, blank=True, default="")
    # True when the judge chose another intent or none: what "judge disagrees first" sorts on.
    judge_disagrees = models.BooleanField(null=True, blank=True)
    judge_intent = models.ForeignKey(
        IntentNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="judged_questions",
        help_text="The intent the judge chose (blank: none of the candidates).")
    judge_score = models.FloatField(null=True, blank=True, help_text="0-1: naturalness, 0 when another intent.")
    judge_reason = models.TextField(blank=True)
    judge_model = models.CharField(max_length=200, blank=True)
    judge_prompt_version = models.CharField(max_length=50, blank=True)

    # Review.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reviewed_questions"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    original_intent = models.ForeignKey(
        IntentNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="relabeled_away_questions"
    )
    original_text = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1, help_text="Bumped on every change (optimistic concurrency).")
    # Review queue lease: who holds the item and until when.
    leased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="leased_questions"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Removed by a dataset admin (datasets/lifecycle.py): hidden from queues, lists and exports, its
    # review events kept; restoring clears it. Purged (really deleted) once old enough.
    removed_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "text_hash"], name="question_unique_text_per_topic"),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="question_confidence_0_1",
            ),
        ]
        indexes = [
            models.Index(fields=["topic", "status", "intent"], name="question_topic_status_idx"),
            models.Index(fields=["intent", "status"], name="question_intent_status_idx"),
            models.Index(fields=["topic", "status", "confidence", "id"], name="question_queue_idx"),
            models.Index(fields=["run"], name="question_run_idx"),
            models.Index(fields=["created_at"], name="question_created_idx"),
            # The split's "which near-duplicate groups span intents" (an index-only GROUP BY),
            # and "which questions still lack a key" (empty in practice).
            models.Index(fields=["topic", "near_key"], include=["intent", "status"], name="question_near_key_idx"),
            # The review queue's "judge disagrees first" and the list's verdict filter.
            models.Index(fields=["topic", "status", "judge_disagrees", "id"], name="question_judge_queue_idx"),
            models.Index(fields=["topic"], condition=Q(near_key__isnull=True), name="question_near_key_missing_idx"),
            # The purge's "removed before": only removed questions are in it.
            models.Index(fields=["removed_at"], condition=Q(removed_at__isnull=False), name="question_removed_idx"),
            # The admin's filters by generation metadata list their values by a skip scan over
            # these (datasets.admin_lists.topic_column_values), not a DISTINCT over the table.
            models.Index(fields=["topic", "complexity"], name="question_topic_complexity_idx"),
            models.Index(fields=["topic", "audience"], name="question_topic_audience_idx"),
            models.Index(fields=["topic", "edge_case"], name="question_topic_edge_case_idx"),
            # The text search's GIN trigram index on UPPER(text) is made by migration 0016 on
            # PostgreSQL only (SQLite has no GIN): not declared here.
        ]

    def __str__(self):
        return self.text[:80]

    def save(self, *args, **kwargs):
        self.text_hash, self.near_key = text_hash(self.text), near_duplicate_key(self.text)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "text" in update_fields:
            kwargs["update_fields"] = {*update_fields, "text_hash", "near_key"}
        text_written = update_fields is None or "text" in update_fields
        super().save(*args, **kwargs)
        if text_written:  # the paraphrase index follows the text, in the same transaction
            from datasets.health.index import paraphrase_index_write

            paraphrase_index_write(questions=[(self.pk, self.topic_id, self.text)], replace=True)

    def clean(self):
        if self.intent_id and self.topic_id and self.intent.topic_id != self.topic_id:
            raise ValidationError({"intent": "The intent belongs to another topic."})
        if not self.text.strip():
            raise ValidationError({"text": "The question is empty."})
        dupes = Question.objects.filter(topic_id=self.topic_id, text_hash=text_hash(self.text)).exclude(pk=self.pk)
        if self.topic_id and dupes.exists():
            raise ValidationError({"text": "This topic already has this question (ignoring case and punctuation)."})


class QuestionBand(models.Model):
    """One MinHash LSH band key of a question (datasets/health/paraphrase.py): questions sharing a
    key are paraphrase candidates. A table rather than a process's memory, so every web and worker
    process sees the same index, written in the transaction that writes the question."""

    pk = models.CompositePrimaryKey("question", "band")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="bands")
    band = models.PositiveSmallIntegerField()
    # The band's rows of the signature mixed with the band number and the topic: one lookup by key
    # finds the candidates of one topic, without a topic column in the index.
    key = models.BigIntegerField()
    # The question's near-duplicate key (datasets.normalize.near_duplicate_key of its text), held
    # in the key index too: a lookup collapses a key's candidates to one per near-duplicate group
    # from the index alone, reading no question row but the few it lists.
    near_key = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["key"], include=["question", "near_key"], name="questionband_key_near_idx")]

    def __str__(self):
        return f"band {self.band} of #{self.question_id}"


class QuestionCount(models.Model):
    """Kept question counts: deltas of the number of questions per (topic, intent, status, removed),
    written by database triggers on the question table (migration 0017), never by Python code. A
    key's count is the sum of its rows (datasets.question_counts); a compaction folds a topic's rows
    into one per key. Deltas rather than one row per key so concurrent writers never wait on a
    shared row. No foreign keys: the rows of a deleted topic or intent sum to zero and go at the
    next compaction, and the triggers must not be refused by a constraint mid-deletion."""

    topic_id = models.BigIntegerField()
    intent_id = models.BigIntegerField()
    status = models.CharField(max_length=16)
    removed = models.BooleanField()
    n = models.BigIntegerField(help_text="Questions added (or, negative, taken away) from this key.")

    class Meta:
        indexes = [models.Index(fields=["topic_id"], name="questioncount_topic_idx"),
                   models.Index(fields=["intent_id"], name="questioncount_intent_idx")]

    def __str__(self):
        return f"{self.n:+d} {self.status}{' removed' if self.removed else ''} of intent {self.intent_id}"


class ReviewEvent(models.Model):
    """Append-only audit of every change of a question's status, intent or text."""

    class Action(models.TextChoices):
        APPROVE = "approve", "Approve"
        REJECT = "reject", "Reject"
        FLAG = "flag", "Flag"
        RELABEL = "relabel", "Relabel"
        EDIT = "edit", "Edit"
        RESET = "reset", "Reset to pending"
        UNDO = "undo", "Undo"
        UPDATE = "update", "Update other fields"
        REMOVE = "remove", "Remove"
        RESTORE = "restore", "Restore"

    # PROTECT: deleting a question must not erase its history by accident. Questions are removed
    # (Question.removed_at), not deleted; only a purge or a topic deletion deletes events, and says so.
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    from_intent = models.ForeignKey(IntentNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    to_intent = models.ForeignKey(IntentNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    from_text = models.TextField(blank=True)
    to_text = models.TextField(blank=True)
    via = models.CharField(max_length=16, default="ui", help_text="ui, api, admin or cli")
    # For `update`: {"field": [old, new]} of the fields a dataset admin changed in the admin.
    changes = models.JSONField(default=dict, blank=True)
    # Why a reviewer rejected or flagged (one of the topic's review_reasons or their own words),
    # or a lead's note on a second opinion.
    reason = models.CharField(max_length=REVIEW_REASON_MAX_CHARS, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["question", "-created_at"], name="reviewevent_question_idx"),
                   # A reviewer's own latest actions: the server-side undo stack and reviewer figures.
                   models.Index(fields=["actor", "-created_at"], name="reviewevent_actor_idx")]

    def __str__(self):
        return f"{self.action} #{self.question_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Review events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Review events are append-only.")


class ReviewVote(models.Model):
    """One reviewer's independent decision on a question the topic's overlap setting gives to several
    reviewers; a row with no `action` yet is a claim (the question is on that reviewer's screen until
    `claim_expires_at`). When the last of the k votes is in, the question is decided (all agree) or
    flagged for a lead's adjudication (they disagree); the votes stay as the record of agreement."""

    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="votes")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_votes")
    action = models.CharField(max_length=16, blank=True, help_text="approve, reject, flag or relabel; blank: claimed.")
    intent = models.ForeignKey(IntentNode, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                               help_text="The intent the reviewer gave (approve: the question's; relabel: the new one).")
    reason = models.CharField(max_length=REVIEW_REASON_MAX_CHARS, blank=True, default="")
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["question_id", "id"]
        constraints = [models.UniqueConstraint(fields=["question", "reviewer"], name="review_vote_one_per_reviewer")]
        indexes = [models.Index(fields=["reviewer", "-decided_at"], name="review_vote_reviewer_idx")]

    def __str__(self):
        return f"{self.action or 'claim'} #{self.question_id} by {self.reviewer_id}"


class Augmentation(models.Model):
    """One offline augmentation of a topic (datasets/augment.py, datasets.services.topic_augment): its
    request, and the status row of the job that writes the variants."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="augmentations")
    share = models.FloatField(validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
                              help_text="At most floor(share x approved questions) variants per intent.")
    seed = models.IntegerField(default=1)
    kinds = models.JSONField(default=list, help_text='Transformations drawn from, e.g. ["typo", "case"].')
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    intents_total = models.PositiveIntegerField(default=0)
    intents_done = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0, help_text="Pending questions written.")
    per_kind = models.JSONField(default=dict, blank=True, help_text="Questions written per transformation kind.")
    error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Augmentation of {self.topic} ({self.status})"


class TopicPreset(models.Model):
    """A domain template (banking, telecom...) a new topic starts from: its description, and the
    languages, styles and audiences its distillation runs ask for. Shipped ones come from a data
    migration; dataset admins add their own in the admin."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(help_text="The new topic's description (the teacher reads it in every prompt).")
    languages = models.JSONField(
        default=list, help_text='Language codes, the first one the topic\'s: ["en"] or ["en", "es"].')
    styles = models.JSONField(default=dict, help_text='The runs\' style weights, e.g. {"request": 3, "casual chat": 1}.')
    audiences = models.JSONField(default=dict, help_text='The runs\' audience weights, e.g. {"general": 3}.')
    builtin = models.BooleanField(default=False, editable=False, help_text="Shipped with the product.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def clean(self):
        codes = {code for code, _ in LANGUAGE_CHOICES}
        if not isinstance(self.languages, list) or not self.languages or any(c not in codes for c in self.languages):
            raise ValidationError({"languages": f"Give a JSON list of language codes from {', '.join(sorted(codes))}."})
        for field in ("styles", "audiences"):
            weights = getattr(self, field)
            if not isinstance(weights, dict) or not weights or not all(
                    isinstance(k, str) and k.strip() and len(k) <= 30 and not isinstance(v, bool)
                    and isinstance(v, int | float) and v > 0 for k, v in weights.items()):
                raise ValidationError({field: 'Give a JSON object of names (up to 30 characters) to positive '
                                              'weights, e.g. {"general": 3, "expert": 1}.'})

    @property
    def mix(self) -> dict:
        """The part of a run's diversity mix (distiller/mix.py) this preset sets."""
        return {"style": dict(self.styles), "audience": dict(self.audiences)}


class ExportStorage(FileSystemStorage):
    """Export files live under settings.EXPORT_ROOT, outside MEDIA_ROOT: never served publicly,
    only through the authorised download views. The root is read on every use so tests can move it."""

    @property
    def base_location(self):
        return settings.EXPORT_ROOT

    @property
    def location(self):
        return str(settings.EXPORT_ROOT)

    @property
    def base_url(self):
        return None


class Export(models.Model):
    """One export job: a topic's questions written to files in a training format."""

    class Format(models.TextChoices):
        JSONL = "jsonl", "JSONL (seed schema)"
        JSON = "json", "JSON"
        CSV = "csv", "CSV"
        PARQUET = "parquet", "Parquet"
        ALPACA = "alpaca", "Alpaca"
        # LLaMA-Factory's ShareGPT (conversations, from/value); OpenAI's chat messages are `openai`.
        SHAREGPT = "sharegpt", "ShareGPT (conversations, from/value)"
        OPENAI = "openai", "OpenAI messages (role/content)"
        RASA = "rasa", "Rasa NLU YAML"
        HUGGINGFACE = "huggingface", "Hugging Face folder"
        HUGGINGFACE_PARQUET = "huggingface_parquet", "Hugging Face folder (Parquet)"
        # (query, positive intent, hard-negative intent) of the hard negatives, for retrievers.
        TRIPLETS = "triplets", "Triplets, JSON Lines (query, positive, hard negative)"
        TRIPLETS_TSV = "triplets_tsv", "Triplets, TSV (query, positive, hard negative)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=32, choices=Format.choices, default=Format.JSONL)
    filters = models.JSONField(default=dict, blank=True, help_text='e.g. {"statuses": ["approved"], "intent": 12}')
    split = models.JSONField(default=dict, blank=True, help_text='e.g. {"train": 0.8, "test": 0.2}')
    seed = models.IntegerField(default=42)
    system_prompt = models.TextField(blank=True)
    instruction = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    file = models.FileField(upload_to="exports/", storage=export_storage, blank=True, max_length=500,
                            help_text="The first data file, in the exports storage; the others sit beside it.")
    # Listed once when written, so listing exports asks the storage (maybe an object store) nothing.
    files = models.JSONField(default=list, blank=True, help_text='The stored files: [{"name": ..., "size": ...}].')
    counts = models.JSONField(default=dict, blank=True, help_text="Rows per split.")
    intent_counts = models.JSONField(default=dict, blank=True, help_text="Rows per intent and split.")
    warnings = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["topic", "-created_at"], name="export_topic_idx")]

    def __str__(self):
        return f"{self.get_format_display()} export of {self.topic} ({self.status})"


class DataDeletion(models.Model):
    """What a topic deletion or a purge of removed questions deleted: a status row for the job and
    the record that stays once the topic is gone (so it names the topic rather than pointing at it)."""

    class Kind(models.TextChoices):
        TOPIC = "topic", "Topic deletion"
        PURGE = "purge", "Purge of removed questions"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    topic_id = models.BigIntegerField(null=True, blank=True, help_text="The topic's id (no foreign key: it goes).")
    topic_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    planned = models.JSONField(default=dict, blank=True, help_text="What the confirmation said would go.")
    deleted = models.JSONField(default=dict, blank=True, help_text="Rows deleted per kind, and files.")
    batches = models.PositiveIntegerField(default=0)
    longest_batch_ms = models.PositiveIntegerField(default=0, help_text="The longest single batch transaction.")
    error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["topic_id"], condition=Q(kind="topic", status__in=["queued", "running"]),
                                    name="data_deletion_one_active_per_topic"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.topic_name or 'every topic'} ({self.status})"
