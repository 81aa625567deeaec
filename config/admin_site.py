"""The product's admin site: Django's, with its titles, the queue workers on the home page, and
row ids read in ASCII digits only.

Django's admin reads an id with int(), which takes Arabic-Indic "١" or "1_0" for another row than
the one typed (config/input.py says why the product refuses them): every ModelAdmin registered
here, the project's and Django's own (users, groups), gets AsciiIdAdminMixin.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from config.input import ASCII_INTEGER


def _is_ascii_id(value) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and ASCII_INTEGER.fullmatch(value.strip()) is not None)


def _integer_keyed(field: forms.ModelChoiceField) -> bool:
    key = field.queryset.model._meta.get_field(field.to_field_name) if field.to_field_name else (
        field.queryset.model._meta.pk)
    return key.get_internal_type() in ("AutoField", "BigAutoField", "SmallAutoField", "IntegerField",
                                       "BigIntegerField", "PositiveIntegerField")


class AsciiIdModelChoiceField(forms.ModelChoiceField):
    def to_python(self, value):
        if value not in self.empty_values and _integer_keyed(self) and not _is_ascii_id(value):
            raise ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class AsciiIdModelMultipleChoiceField(forms.ModelMultipleChoiceField):
    def _check_values(self, value):
        if _integer_keyed(self) and any(not _is_ascii_id(v) for v in value):
            raise ValidationError(self.error_messages["invalid_pk_value"], code="invalid_pk_value",
                                  params={"pk": next(v for v in value if not _is_ascii_id(v))})
        return super()._check_values(value)


class AsciiIdAdminMixin:
    """Foreign keys, many-to-many choices and the object id of a change page in ASCII digits only."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", AsciiIdModelChoiceField)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs.setdefault("form_class", AsciiIdModelMultipleChoiceField)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_object(self, request, object_id, from_field=None):
        field = self.model._meta.get_field(from_field) if from_field else self.model._meta.pk
        if field.get_internal_type().endswith(("AutoField", "IntegerField")) and not _is_ascii_id(object_id):
            return None  # the admin then says the object does not exist
        return super().get_object(request, object_id, from_field)


class DistillerAdminSite(admin.AdminSite):
    site_header = "Intent Distiller"
    site_title = "Intent Distiller admin"
    index_title = "Datasets, runs and review"
    enable_nav_sidebar = False

    def register(self, model_or_iterable, admin_class=None, **options):
        from rest_framework.authtoken.models import TokenProxy

        models = model_or_iterable if isinstance(model_or_iterable, list | tuple) else [model_or_iterable]
        if TokenProxy in models:  # DRF's own shows every key (config/admin_tokens.py)
            from config.admin_tokens import ApiTokenAdminMixin

            admin_class = type("ApiTokenAdmin", (ApiTokenAdminMixin, admin_class or admin.ModelAdmin),
                               {"__module__": __name__})
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AsciiIdAdminMixin):
            admin_class = type(admin_class.__name__, (AsciiIdAdminMixin, admin_class), {"__module__": admin_class.__module__})
        return super().register(model_or_iterable, admin_class, **options)

    def index(self, request, extra_context=None):
        """The admin's home, with the live workers of each queue for those who may see the queues."""
        from config import health
        from config.queue_dashboard import may_use_queue_dashboard

        extra_context = dict(extra_context or {})
        if may_use_queue_dashboard(request.user, name="home", method="GET"):
            extra_context["queue_workers"] = health.workers_live_by_queue()
        return super().index(request, extra_context)
