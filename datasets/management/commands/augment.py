"""python manage.py augment --topic NAME_OR_ID --share 0.2 [--seed 1] [--kinds typo,case,...]

Offline augmentation, run in this process (the API and the admin queue a job instead): pending
variants of the topic's approved questions, at most floor(share x approved) per intent."""

from django.core.management.base import BaseCommand, CommandError

from datasets.augment import KINDS
from datasets.jobs import augmentation_run
from datasets.models import Augmentation
from datasets.selectors import topic_by_name_or_id
from datasets.services import DatasetError, augmentation_create


def _share(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise CommandError(f"--share must be a number above 0 and at most 1, such as 0.2; got {raw!r}.") from None


class Command(BaseCommand):
    help = ("Write pending variants of a topic's approved questions (typos, missing punctuation, casing, chat "
            "spelling, filler words) as source 'augmented', at most floor(share x approved) per intent; "
            "the same seed gives the same variants.")

    def add_arguments(self, parser):
        parser.add_argument("--topic", required=True, help="The topic's name or id.")
        parser.add_argument("--share", required=True, type=_share, help="e.g. 0.2: up to a fifth per intent.")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--kinds", default="", help=f"Comma-separated, from {','.join(KINDS)} (default: all).")

    def handle(self, *args, topic, share, seed, kinds, **options):
        target = topic_by_name_or_id(topic)
        if target is None:
            raise CommandError(f"No topic named {topic!r} (or with that id).")
        try:
            augmentation = augmentation_create(topic=target, share=share, seed=seed, kinds=kinds or None,
                                               enqueue_job=False)
        except DatasetError as exc:
            raise CommandError(exc.message) from None
        try:
            augmentation_run(augmentation.pk)
        except Exception:  # a bug: augmentation_run stored it on the row, reported below
            pass
        augmentation.refresh_from_db()
        if augmentation.status != Augmentation.Status.SUCCEEDED:
            raise CommandError(f"Augmentation #{augmentation.pk} failed: {augmentation.error}")
        kinds_written = ", ".join(f"{kind} {n}" for kind, n in sorted(augmentation.per_kind.items())) or "none"
        self.stdout.write(f"Augmentation #{augmentation.pk} of {target.name!r}: {augmentation.created} pending "
                          f"question{'s' if augmentation.created != 1 else ''} written over "
                          f"{augmentation.intents_total} intents ({kinds_written}).")
