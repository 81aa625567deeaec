"""Evaluations of a topic's data (a baseline trained and tested on it) and the likely label errors they found."""

from django.conf import settings
from django.db import models

from datasets.models import ExportStorage, IntentNode, Question, Topic


class Evaluation(models.Model):
    """One training and test run of a baseline classifier on a topic's questions."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="evaluations")
    train_spec = models.CharField(max_length=500, blank=True,
                                  help_text='Which questions to train on, e.g. "split=train,validation"; '
                                            "blank: the default plan.")
    test_spec = models.CharField(max_length=500, blank=True,
                                 help_text='Which questions to test on, e.g. "split=test"; blank: the default plan.')
    include_out_of_scope = models.BooleanField(default=False)
    backend = models.CharField(max_length=50, default="tfidf-svm")
    parameters = models.JSONField(default=dict, blank=True,
                                  help_text="Backend parameters and options (learning curve, label issues, folds).")
    seed = models.IntegerField(default=42)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    job_id = models.CharField(max_length=64, blank=True)
    stage = models.CharField(max_length=100, blank=True, help_text="What the job is doing now.")
    percent = models.PositiveSmallIntegerField(default=0)
    train_count = models.PositiveIntegerField(null=True, blank=True)
    test_count = models.PositiveIntegerField(null=True, blank=True)
    intent_count = models.PositiveIntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    timings = models.JSONField(default=dict, blank=True, help_text="Seconds per stage.")
    warnings = models.JSONField(default=list, blank=True)
    # The folder holding model.json, arrays.npz and questions.npz (the ids trained and tested on),
    # relative to EXPORT_ROOT: evaluations/<id>/.
    model_folder = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["topic", "status", "-finished_at"], name="evaluation_topic_idx")]

    def __str__(self):
        return f"Evaluation #{self.pk} of {self.topic} ({self.status})"

    @property
    def storage(self):
        return ExportStorage()


class LabelIssue(models.Model):
    """A reviewed question whose given intent the baseline finds unlikely (out-of-fold), with its suggestion."""

    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="label_issues")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="label_issues")
    given_intent = models.ForeignKey(IntentNode, on_delete=models.CASCADE, related_name="+")
    suggested_intent = models.ForeignKey(IntentNode, on_delete=models.CASCADE, related_name="+")
    given_confidence = models.FloatField(help_text="The model's probability of the given intent.")
    confidence = models.FloatField(help_text="The model's probability of the suggested intent.")
    rank = models.PositiveIntegerField(help_text="1 = the most likely label error.")

    class Meta:
        ordering = ["evaluation_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["evaluation", "question"], name="label_issue_unique_question"),
            models.UniqueConstraint(fields=["evaluation", "rank"], name="label_issue_unique_rank"),
        ]
        indexes = [models.Index(fields=["question", "evaluation"], name="label_issue_question_idx")]

    def __str__(self):
        return f"#{self.rank} question {self.question_id}"
