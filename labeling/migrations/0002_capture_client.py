"""The `capture client` role: service accounts that post production queries (captures API)."""

from django.db import migrations

CAPTURE_CLIENT = "capture client"


def create_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.get_or_create(name=CAPTURE_CLIENT)


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=CAPTURE_CLIENT).delete()


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_roles")]
    operations = [migrations.RunPython(create_group, remove_group)]
