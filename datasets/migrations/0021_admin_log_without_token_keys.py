"""Take API token keys out of the admin log written before config/admin_tokens.py.

DRF's stock Token admin named each token by its key, so every token added, changed or deleted in
the admin left its key in `django_admin_log.object_repr` (shown as "Recent actions", readable by
anyone with the database or a backup). Those entries are renamed "API token of <username>", as
the admin names tokens now; nothing else in them changes. Not reversible: the keys are not kept.
(In the datasets app because the project's own apps are where its migrations live.)"""

from django.db import migrations


def token_keys_scrub(apps, schema_editor):
    LogEntry = apps.get_model("admin", "LogEntry")
    User = apps.get_model("auth", "User")
    entries = LogEntry.objects.filter(content_type__app_label="authtoken").exclude(object_repr__startswith="API token of ")
    usernames = dict(User.objects.values_list("pk", "username"))
    for entry in entries.iterator():
        # TokenProxy's admin URLs (and so object_id) use the user's id; the old Token model's used the key.
        owner = usernames.get(int(entry.object_id)) if entry.object_id.isdigit() else None
        entry.object_repr = f"API token of {owner or 'a user'}"
        if not entry.object_id.isdigit():
            entry.object_id = ""
        entry.save(update_fields=["object_repr", "object_id"])


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0020_questionband_near_key"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(token_keys_scrub, migrations.RunPython.noop, elidable=True)]
