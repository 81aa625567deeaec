"""Admin of offline augmentation (a topic action and the augmentations' status rows) and of the
domain presets topics start from."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from datasets.augment import KINDS
from datasets.models import Augmentation, TopicPreset
from datasets.permissions import is_dataset_admin
from datasets.services import DatasetError, augmentation_create


class AugmentForm(forms.Form):
    share = forms.FloatField(initial=0.2, min_value=0.0, max_value=1.0,
                             help_text="Up to floor(share x approved questions) variants per intent, e.g. 0.2.")
    seed = forms.IntegerField(initial=1, min_value=-(2**31), max_value=2**31 - 1)
    kinds = forms.MultipleChoiceField(choices=[(k, k) for k in KINDS], initial=list(KINDS),
                                      widget=forms.CheckboxSelectMultiple)

    def clean_share(self):
        share = self.cleaned_data["share"]
        if share <= 0:
            raise forms.ValidationError("The share must be above 0.")
        return share


class TopicAugmentAdminMixin:
    """The topics list's "Augment" action: a form (share, seed, kinds), then one job per topic."""

    @admin.action(description="Augment the approved questions of the selected topics")
    def augment_selected(self, request, queryset):
        if not is_dataset_admin(request.user):
            raise PermissionDenied
        topics = list(queryset.order_by("name"))
        form = AugmentForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            for topic in topics:
                try:
                    augmentation = augmentation_create(topic=topic, share=form.cleaned_data["share"],
                                                       seed=form.cleaned_data["seed"], kinds=form.cleaned_data["kinds"],
                                                       requested_by=request.user)
                except DatasetError as exc:
                    self.message_user(request, f"{topic.name}: {exc.message}", messages.ERROR)
                    continue
                self.message_user(request, f"{topic.name}: augmentation #{augmentation.pk} queued; its progress is "
                                           "under Augmentations.", messages.SUCCESS)
            return None
        return TemplateResponse(request, "admin/datasets/topic/augment.html",
                                {**self.admin_site.each_context(request), "title": "Augment topics",
                                 "topics": topics, "form": form, "opts": self.model._meta})


@admin.register(Augmentation)
class AugmentationAdmin(admin.ModelAdmin):
    list_display = ("id", "topic", "share", "seed", "status", "progress", "created", "created_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("topic",)
    readonly_fields = [f.name for f in Augmentation._meta.fields]

    @admin.display(description="Intents done")
    def progress(self, augmentation):
        return f"{augmentation.intents_done} / {augmentation.intents_total}"

    def has_module_permission(self, request):
        return is_dataset_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_dataset_admin(request.user)

    def has_add_permission(self, request):
        return False  # started from the topics list's action, the API or `manage.py augment`

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TopicPreset)
class TopicPresetAdmin(admin.ModelAdmin):
    """Dataset admins add their own domain presets; the shipped ones can be edited, not deleted."""

    list_display = ("name", "languages", "builtin", "created_at")
    search_fields = ("name", "description")
    fields = ("name", "description", "languages", "styles", "audiences")

    def has_module_permission(self, request):
        return is_dataset_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_dataset_admin(request.user)

    def has_add_permission(self, request):
        return is_dataset_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return is_dataset_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_dataset_admin(request.user) and not (obj is not None and obj.builtin)
