"""The admin's "start a run" form."""

import json

from django import forms

from datasets.models import LANGUAGE_CHOICES, Topic, TopicPreset
from distiller.mix import DEFAULT_MIX
from distiller.models import DistillationRun, LLMProvider


class RunStartForm(forms.Form):
    topic = forms.ModelChoiceField(queryset=Topic.objects.all(), required=False)
    new_topic = forms.CharField(max_length=200, required=False, label="Or a new topic",
                                help_text="A name: the topic is created, with the settings below, when the run starts.")
    preset = forms.ModelChoiceField(
        queryset=TopicPreset.objects.all(), required=False, label="Preset (new topic)",
        help_text="A domain template for the new topic: its description, and its styles and audiences for "
                  "the runs when the mix below is left as it is.")
    kind = forms.ChoiceField(choices=DistillationRun.Kind.choices, initial=DistillationRun.Kind.AUTO)
    provider = forms.ModelChoiceField(queryset=LLMProvider.objects.filter(is_active=True))
    levels = forms.IntegerField(min_value=1, max_value=6, initial=2)
    tags_per_level = forms.IntegerField(min_value=1, max_value=50, initial=5)
    questions_per_intent = forms.IntegerField(min_value=1, max_value=10000, initial=20)
    questions_per_call = forms.IntegerField(min_value=1, max_value=50, initial=10)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, initial="en",
                                 help_text="The language of the taxonomy's intent names (and of the questions, "
                                           "when no languages are ticked below).")
    languages = forms.MultipleChoiceField(
        choices=LANGUAGE_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The languages the questions are written in, spread evenly over each intent. Left blank: "
                  "the preset's languages (a new topic's preset, or the topic's, when the language above is "
                  "left as the topic's), else the language above.")
    leaf_only = forms.BooleanField(required=False, initial=True, help_text="Questions for leaf intents only.")
    mix = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "cols": 90}), required=False,
                          initial=json.dumps(DEFAULT_MIX), help_text="Diversity mix: weights per style, complexity, "
                          "audience and edge case (JSON).")

    judge = forms.ModelChoiceField(queryset=LLMProvider.objects.filter(is_active=True), required=False,
                                   help_text="An LLM judge (also the teacher's own provider); blank: none.")
    judge_threshold = forms.FloatField(min_value=0, max_value=1, initial=0.5, required=False,
                                       help_text="The score (0-1) a question must reach.")
    judge_action = forms.ChoiceField(choices=[("mark", "Mark only"), ("reject", "Reject"),
                                              ("refine", "Refine (the teacher rewrites it)")], initial="mark", required=False,
                                     help_text="What happens to a question below the threshold.")
    judge_refine_rounds = forms.IntegerField(min_value=1, max_value=5, initial=2, required=False)
    hard_negatives = forms.IntegerField(min_value=0, max_value=1000, initial=0, required=False,
                                        help_text="Near-boundary questions per pair of neighbouring intents.")
    out_of_scope = forms.IntegerField(min_value=0, max_value=10000, initial=0, required=False,
                                      help_text="Questions near the topic but outside every intent.")

    def clean_mix(self):
        raw = self.cleaned_data["mix"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The mix is a JSON object of dimensions.")
        return value

    def clean(self):
        data = super().clean()
        new_topic = (data.get("new_topic") or "").strip()
        if data.get("topic") and new_topic:
            raise forms.ValidationError("Choose a topic or name a new one, not both.")
        if not data.get("topic") and not new_topic and not self.has_error("topic"):
            raise forms.ValidationError("Choose a topic, or name a new one.")
        if new_topic and Topic.objects.filter(name__iexact=new_topic).exists():
            raise forms.ValidationError(f"A topic named {new_topic!r} exists already: choose it in the list.")
        if data.get("preset") and not new_topic:
            raise forms.ValidationError("A preset starts a new topic: name one, or clear the preset.")
        data["new_topic"] = new_topic
        return data

    def run_arguments(self) -> dict:
        data = dict(self.cleaned_data)
        data["judge"] = data["judge"].name if data.get("judge") else ""
        for name in ("judge_threshold", "judge_action", "judge_refine_rounds", "hard_negatives", "out_of_scope"):
            if data.get(name) in (None, ""):
                data.pop(name, None)  # the run's default
        data.pop("new_topic", None)  # the view makes the topic (distiller.admin, start_view)
        preset = data.pop("preset", None)
        if preset is not None and data.get("mix") in (None, DEFAULT_MIX):
            data["mix"] = None  # the mix left as it was: the run takes the new topic's preset's
        if not data.get("languages"):
            data.pop("languages", None)
            topic = data.get("topic")
            if preset is not None:
                data["languages"] = list(preset.languages)
            elif topic is not None and topic.preset_id is not None and data.get("language") == topic.language:
                data.pop("language")  # the language left as the topic's: the run takes its preset's languages
        return {"topic": data.pop("topic"), "kind": data.pop("kind"), "provider": data.pop("provider"), **data}
