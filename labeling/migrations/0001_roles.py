"""The two roles: `reviewer` and `dataset admin` (see README, "Roles")."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {
    # Reviewers read the taxonomy and review questions of the topics they are assigned to.
    "reviewer": [
        ("datasets", "view_topic"),
        ("datasets", "view_intentnode"),
        ("datasets", "view_question"),
        ("datasets", "change_question"),
        ("datasets", "view_reviewevent"),
    ],
    # Dataset admins manage topics, taxonomies, questions, runs and exports; they see providers
    # but only superusers change provider settings.
    "dataset admin": [
        (app, f"{verb}_{model}")
        for app, model in [
            ("datasets", "topic"),
            ("datasets", "intentnode"),
            ("datasets", "question"),
            ("datasets", "export"),
            ("distiller", "distillationrun"),
        ]
        for verb in ("view", "add", "change", "delete")
    ]
    + [("datasets", "view_reviewevent"), ("distiller", "view_llmprovider")],
}


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so the groups can hold them.
    for app_label in ("datasets", "distiller"):
        app_config = apps.get_app_config(app_label)
        if not getattr(app_config, "models_module", None):
            app_config.models_module = True  # the migration state's app stub lacks it
        create_permissions(app_config, apps=apps, verbosity=0)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, codename in perms:
            group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("datasets", "0002_initial"),
        ("distiller", "0002_default_providers"),
    ]
    operations = [migrations.RunPython(create_roles, remove_roles)]
