"""LLM providers and distillation runs."""

import os
import re
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# A provider row names the variable whose value is sent as a Bearer token to its base URL. Any
# name would let a row send SECRET_KEY or DATABASE_URL to a foreign server (and key_status would
# tell whether any variable is set), so only provider-key names are accepted.
PROVIDER_KEY_NAME = re.compile(r"^[A-Z][A-Z0-9_]*_API_KEY$")


def key_variable_problem(name: str) -> str:
    """Why `name` may not hold a provider key ('' when it may)."""
    if not name or name in settings.LLM_PROVIDER_KEY_VARIABLES or PROVIDER_KEY_NAME.match(name):
        return ""
    if not ENV_VAR_NAME.match(name):
        return "Enter the NAME of an environment variable (like DEEPSEEK_API_KEY), not a key."
    return (f"{name} may not hold a provider key: use one of {', '.join(settings.LLM_PROVIDER_KEY_VARIABLES)} "
            "or a name ending in _API_KEY.")


class LLMProvider(models.Model):
    """An OpenAI-compatible endpoint. The API key stays in the environment; only its variable name is stored."""

    class Kind(models.TextChoices):
        DEEPSEEK = "deepseek", "DeepSeek"
        OPENROUTER = "openrouter", "OpenRouter"
        OPENAI = "openai", "OpenAI"
        CUSTOM = "custom", "Custom (any OpenAI-compatible server)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CUSTOM)
    base_url = models.URLField(max_length=500, blank=True, help_text="Blank: read LLM_BASE_URL (custom provider).")
    model = models.CharField(max_length=200, blank=True, help_text="Blank: read LLM_MODEL (custom provider).")
    api_key_env = models.CharField(
        "API key variable", max_length=100, blank=True,
        help_text="Name of the environment variable that holds the key, e.g. DEEPSEEK_API_KEY. Never the key itself.",
    )
    supports_json_schema = models.BooleanField(
        default=False, help_text="Send response_format json_schema; otherwise json_object with the schema in the prompt."
    )
    max_concurrency = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1)])
    requests_per_minute = models.PositiveIntegerField(default=600, help_text="0 means no limit.")
    price_input_per_mtok = models.DecimalField(
        "input price per 1M tokens (USD)", max_digits=10, decimal_places=4, default=Decimal("0")
    )
    price_output_per_mtok = models.DecimalField(
        "output price per 1M tokens (USD)", max_digits=10, decimal_places=4, default=Decimal("0")
    )
    timeout_seconds = models.FloatField(default=120.0)
    # Learned, not configured: what the server refused with a 400/422 and how calls adapt
    # (distiller.llm.LLMClient._adaptations_for), so every worker sends the adapted request first.
    request_adaptations = models.JSONField(
        default=dict, blank=True, editable=False,
        help_text='Parameters the server refused and what calls send instead, e.g. {"temperature": "dropped"}.')
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "LLM provider"

    def __str__(self):
        return self.name

    def clean(self):
        problem = key_variable_problem(self.api_key_env)
        if problem:
            raise ValidationError({"api_key_env": problem})

    @property
    def resolved_base_url(self) -> str:
        return self.base_url or settings.LLM_BASE_URL

    @property
    def resolved_model(self) -> str:
        return self.model or settings.LLM_MODEL

    def api_key(self) -> str:
        """The key from the environment ('' when unset or not a provider-key variable). Never store, log or render it."""
        if not self.api_key_env or key_variable_problem(self.api_key_env):
            return ""
        return os.environ.get(self.api_key_env, "")

    @property
    def has_key(self) -> bool:
        return bool(self.api_key())

    def cost_for(self, tokens_in: int, tokens_out: int) -> Decimal:
        million = Decimal(1_000_000)
        return (Decimal(tokens_in) * self.price_input_per_mtok + Decimal(tokens_out) * self.price_output_per_mtok) / million


class DistillationRun(models.Model):
    """One distillation job (taxonomy, questions or both) with its live progress."""

    class Kind(models.TextChoices):
        AUTO = "auto", "Taxonomy and questions"
        TAXONOMY = "taxonomy", "Taxonomy only"
        QUESTIONS = "questions", "Questions only"
        JUDGE = "judge", "Judge existing questions"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)

    topic = models.ForeignKey("datasets.Topic", on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.AUTO)
    parameters = models.JSONField(default=dict, blank=True)
    provider = models.ForeignKey(LLMProvider, on_delete=models.PROTECT, related_name="runs")
    judge_provider = models.ForeignKey(LLMProvider, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                                       help_text="The LLM judge (blank: no judge).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)

    units_total = models.PositiveIntegerField(default=0)
    units_done = models.PositiveIntegerField(default=0)
    units_failed = models.PositiveIntegerField(default=0)
    intents_created = models.PositiveIntegerField(default=0)
    questions_target = models.PositiveIntegerField(default=0)
    questions_created = models.PositiveIntegerField(default=0)
    duplicates_dropped = models.PositiveIntegerField(default=0)
    near_duplicates_dropped = models.PositiveIntegerField(default=0)
    invalid_dropped = models.PositiveIntegerField(default=0)
    hard_negatives_created = models.PositiveIntegerField(default=0)
    out_of_scope_created = models.PositiveIntegerField(default=0)
    # The judge: questions judged for the first time, what that first verdict said, and what the
    # run's judge_action then did (refinements written, questions rejected).
    questions_judged = models.PositiveIntegerField(default=0)
    judge_disagreed = models.PositiveIntegerField(default=0, help_text="First verdict: another intent or none.")
    judge_low_score = models.PositiveIntegerField(default=0, help_text="First verdict: right intent, below threshold.")
    questions_refined = models.PositiveIntegerField(default=0, help_text="Rewrites written (a question may take several).")
    questions_rejected = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField("cost (USD)", max_digits=12, decimal_places=6, default=Decimal("0"))
    estimate = models.JSONField(default=dict, blank=True, help_text="Calls, tokens and cost estimated at start.")

    # Where the run is, for people: the shallowest open "taxonomy:<level>", then "questions",
    # then "done". Units are planned as their parents finish; this only reports the frontier.
    stage = models.CharField(max_length=32, blank=True, default="")
    warnings = models.JSONField(default=list, blank=True, help_text="Shortfalls per intent and other notes.")

    error = models.TextField(blank=True)
    job_ids = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    # A client's retry of the same start request (Idempotency-Key) gets this run back, not a second one.
    idempotency_key = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written by every live work job's lease keeper (and at start and resume): a running run
    # whose heartbeat is old and whose units hold no live lease has no worker left (see stalled).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["topic", "-created_at"], name="run_topic_idx")]
        constraints = [models.UniqueConstraint(fields=["created_by", "idempotency_key"],
                                               condition=~models.Q(idempotency_key=""), name="run_idempotency_key_uniq")]

    def __str__(self):
        return f"Run #{self.pk} {self.get_kind_display()} of {self.topic} ({self.status})"

    @property
    def progress_percent(self) -> int:
        if not self.units_total:
            return 100 if self.status == self.Status.SUCCEEDED else 0
        return min(100, round(100 * self.units_done / self.units_total))

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class DistillationUnit(models.Model):
    """One idempotent piece of a run: one node's children, or one intent's questions.

    Workers claim a unit with a conditional UPDATE and hold it by a lease they renew; a unit
    whose lease expired (its worker died) is claimed again and tops up from what it already wrote.
    """

    class Kind(models.TextChoices):
        TAXONOMY = "taxonomy", "Children of a node"
        QUESTIONS = "questions", "Questions of an intent"
        OUT_OF_SCOPE = "out_of_scope", "Out-of-scope questions"
        JUDGE = "judge", "Judge (and refine) an intent's questions"
        CONTRAST = "contrast", "Hard negatives of an intent against a neighbour"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(DistillationRun, on_delete=models.CASCADE, related_name="units")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    stage = models.CharField(max_length=32)
    # "taxonomy:root", "taxonomy:<node id>", "questions:<node id>", "judge:<node id>",
    # "contrast:<node id>:<neighbour id>" or "out_of_scope": one unit per run and key.
    key = models.CharField(max_length=64)
    node = models.ForeignKey("datasets.IntentNode", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    # Contrast units: the neighbouring intent the hard negatives are written against.
    neighbour = models.ForeignKey("datasets.IntentNode", null=True, blank=True, on_delete=models.CASCADE,
                                  related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    target = models.PositiveIntegerField(default=0)
    produced = models.PositiveIntegerField(default=0)
    created_ids = models.JSONField(default=list, blank=True, help_text="Intents this unit created.")
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="unit_unique_key_per_run")]
        indexes = [models.Index(fields=["run", "stage", "status"], name="unit_run_stage_idx")]

    def __str__(self):
        return f"{self.key} of run #{self.run_id} ({self.status})"

    @property
    def shortfall(self) -> int:
        return max(0, self.target - self.produced)


class LLMCall(models.Model):
    """One HTTP attempt at the provider, with what it cost; a run's rows sum to its calls, tokens and cost.

    Written in bulk with the counters they add to, in the same transaction, so the two never disagree.
    """

    class Outcome(models.TextChoices):
        OK = "ok", "Valid answer"
        INVALID = "invalid", "Invalid or cut-off answer"
        TRANSIENT = "transient", "Retried error (429, 5xx, timeout, connection, a refused parameter)"
        REFUSED = "refused", "Refused (key, balance, quota, model)"
        INTERRUPTED = "interrupted", "Interrupted: its worker died during the call (tokens unknown)"

    run = models.ForeignKey(DistillationRun, on_delete=models.CASCADE, related_name="llm_calls")
    unit = models.ForeignKey(DistillationUnit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provider = models.ForeignKey(LLMProvider, null=True, on_delete=models.SET_NULL, related_name="+")
    model = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, help_text="taxonomy, questions, judge or refine")
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    cost = models.DecimalField("cost (USD)", max_digits=12, decimal_places=6, default=Decimal("0"))
    latency_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_code = models.CharField(max_length=64, blank=True, help_text='e.g. "http_429", "timeout", "invalid_json"')
    created_at = models.DateTimeField(help_text="When the call started.")

    class Meta:
        ordering = ["id"]
        verbose_name = "LLM call"
        indexes = [models.Index(fields=["run", "created_at"], name="llmcall_run_idx")]

    def __str__(self):
        return f"{self.kind} call of run #{self.run_id} ({self.outcome})"
