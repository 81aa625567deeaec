"""The admin's "start a run" form."""

import json

from django import forms

from datasets.models import LANGUAGE_CHOICES, Topic
from distiller.mix import DEFAULT_MIX
from distiller.models import DistillationRun, LLMProvider


class RunStartForm(forms.Form):
    topic = forms.ModelChoiceField(queryset=Topic.objects.all())
    kind = forms.ChoiceField(choices=DistillationRun.Kind.choices, initial=DistillationRun.Kind.AUTO)
    provider = forms.ModelChoiceField(queryset=LLMProvider.objects.filter(is_active=True))
    levels = forms.IntegerField(min_value=1, max_value=6, initial=2)
    tags_per_level = forms.IntegerField(min_value=1, max_value=50, initial=5)
    questions_per_intent = forms.IntegerField(min_value=1, max_value=10000, initial=20)
    questions_per_call = forms.IntegerField(min_value=1, max_value=50, initial=10)
    language = forms.ChoiceField(choices=LANGUAGE_CHOICES, initial="en")
    leaf_only = forms.BooleanField(required=False, initial=True, help_text="Questions for leaf intents only.")
    mix = forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "cols": 90}), required=False,
                          initial=json.dumps(DEFAULT_MIX), help_text="Diversity mix: weights per style, complexity, "
                          "audience and edge case (JSON).")

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

    def run_arguments(self) -> dict:
        data = dict(self.cleaned_data)
        return {"topic": data.pop("topic"), "kind": data.pop("kind"), "provider": data.pop("provider"), **data}
