"""Train and test the baseline classifier on a topic's questions.

    manage.py evaluate --topic CLINC150 --wait --json
    manage.py evaluate --topic "Customer Support" --train source=generated --test source=imported,captured --wait
    manage.py evaluate --topic 12 --train split=train,validation --test split=test [--include-out-of-scope]

Without --wait the evaluation is queued for the evaluation workers. With --wait it shows the
progress until it ends; when no evaluation worker is running it works in this process.
"""

import json
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.selectors import topic_by_name_or_id
from datasets.services import DatasetError
from evaluation.documents import evaluation_document
from evaluation.models import Evaluation
from evaluation.selectors import evaluation_worker_count
from evaluation.services import MAX_TRAIN_PER_INTENT, evaluation_create, evaluation_run, progress_listeners

ENDED = (Evaluation.Status.SUCCEEDED, Evaluation.Status.FAILED)


class Command(BaseCommand):
    help = "Train and test a baseline classifier on a topic's reviewed questions; find likely label errors."

    def add_arguments(self, parser):
        parser.add_argument("--topic", required=True, help="topic name or id")
        parser.add_argument("--train", default="", help="SPEC of the training questions, e.g. split=train,validation")
        parser.add_argument("--test", default="", help="SPEC of the test questions, e.g. split=test")
        parser.add_argument("--include-out-of-scope", action="store_true", help="keep out-of-scope intents (oos)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--no-learning-curve", action="store_true")
        parser.add_argument("--no-label-issues", action="store_true")
        parser.add_argument("--max-train-per-intent", type=int, default=MAX_TRAIN_PER_INTENT,
                            help="above this many training questions, an intent is trained on a seeded sample of "
                                 "this many (bounds memory; default %(default)s)")
        parser.add_argument("--wait", action="store_true",
                            help="follow the evaluation until it ends; with no evaluation worker, work here")
        parser.add_argument("--json", action="store_true", help="print the evaluation's JSON document (implies --wait)")

    def handle(self, *args, **o):
        topic = topic_by_name_or_id(o["topic"])  # as `manage.py export` finds it: the name first
        if topic is None:
            raise CommandError(f"No topic named {o['topic']!r} (or with that id).")
        wait = o["wait"] or o["json"]
        inline = wait and not evaluation_worker_count()
        try:
            evaluation = evaluation_create(
                topic=topic, train_spec=o["train"], test_spec=o["test"], seed=o["seed"],
                include_out_of_scope=o["include_out_of_scope"], learning_curve=not o["no_learning_curve"],
                label_issues=not o["no_label_issues"], max_train_per_intent=o["max_train_per_intent"],
                enqueue=not inline)
        except DatasetError as exc:
            raise CommandError(exc.message) from None
        log = self.stderr if o["json"] else self.stdout
        if not wait:
            log.write(f"Evaluation #{evaluation.pk} queued. Follow it with GET /api/v1/evaluations/{evaluation.pk}/ "
                      f"or at /evaluations/{evaluation.pk}/.")
            return
        if inline:
            log.write(f"Evaluation #{evaluation.pk}: no evaluation worker is running; working in this process.")
            evaluation = self._run_here(evaluation.pk, quiet=o["json"])
        else:
            evaluation = self._follow(evaluation.pk, quiet=o["json"])
        if o["json"]:
            self.stdout.write(json.dumps(evaluation_document(evaluation), indent=2, ensure_ascii=False))
        if evaluation.status != Evaluation.Status.SUCCEEDED:
            raise CommandError(f"Evaluation #{evaluation.pk} failed: {evaluation.error}")
        if not o["json"]:
            self._summary(evaluation)

    def _run_here(self, evaluation_id: int, *, quiet: bool) -> Evaluation:
        """Run it in this process, in this thread (its transaction, if any, is the caller's), with a progress bar."""
        bar = tqdm(total=100, unit="%", disable=quiet, file=self.stderr._out)

        def show(stage, percent):
            bar.n = percent
            bar.set_description(stage)

        progress_listeners[evaluation_id] = show
        try:
            evaluation_run(evaluation_id=evaluation_id)
        except Exception:  # a bug: evaluation_run stored it on the evaluation, reported below
            pass
        finally:
            progress_listeners.pop(evaluation_id, None)
            bar.close()
        return Evaluation.objects.select_related("topic", "created_by").get(pk=evaluation_id)

    def _follow(self, evaluation_id: int, *, quiet: bool) -> Evaluation:
        bar = tqdm(total=100, unit="%", disable=quiet, file=self.stderr._out)
        while True:
            evaluation = Evaluation.objects.select_related("topic", "created_by").get(pk=evaluation_id)
            bar.n = evaluation.percent
            bar.set_description(evaluation.stage or evaluation.status)
            if evaluation.status in ENDED:
                bar.close()
                return evaluation
            time.sleep(0.5)

    def _summary(self, evaluation: Evaluation) -> None:
        m = evaluation.metrics
        g = m["gates"]
        w = self.stdout.write
        w(f"Evaluation #{evaluation.pk} of {evaluation.topic.name!r}: trained on {m['train_count']}, tested on "
          f"{m['test_count']} questions ({m['intent_count']} intents).")
        w(f"  accuracy {m['accuracy']:.4f}{_interval(m.get('accuracy_interval'))} (gate {g['accuracy']['threshold']}: "
          f"{'pass' if g['accuracy']['passed'] else 'FAIL'}), macro-F1 {m['macro_f1']:.4f}"
          f"{_interval(m.get('macro_f1_interval'))}")
        w(f"  intents with F1 below {g['intent']['threshold']}: {g['intent']['failing_count']}"
          + (": " + ", ".join(f"{x['name']} ({x['f1']})" for x in g["intent"]["failing"][:10])
             if g["intent"]["failing"] else ""))
        verdicts = g["intent"].get("verdicts")
        if verdicts:
            w(f"  by 95 % interval: {verdicts['pass']} pass, {verdicts['fail']} fail, {verdicts['uncertain']} uncertain "
              "(the interval contains the gate)")
            for x in g["intent"]["uncertain"][:10]:
                more = ("the F1 is on the gate" if not x["more_test_questions"] else
                        "the F1 is too close to the gate for more test questions to settle it soon"
                        if x["more_test_questions"] > 10000 else
                        f"about {x['more_test_questions']} more test questions would settle it")
                w(f"    uncertain: {x['name']} F1 {x['f1']:.4f}{_interval(x['f1_interval'])}, n={x['support']}; {more}")
        w("  per level: " + ", ".join(f"level {x['level']} {x['accuracy']}" for x in m["levels"]))
        if m.get("out_of_scope"):
            w(f"  out-of-scope recall {m['out_of_scope']['recall']}")
        if m.get("learning_curve"):
            w("  learning curve: " + ", ".join(f"{p['per_intent']}/intent {p['accuracy']}" for p in m["learning_curve"]))
        if m.get("label_issues"):
            w(f"  likely label errors: {m['label_issues']['found']} (top ones at /evaluations/{evaluation.pk}/)")
        for warning in evaluation.warnings[:10]:
            w(f"  warning: {warning}")


def _interval(bounds) -> str:
    """" (low–high)" of a 95 % interval; nothing for an evaluation stored without one."""
    return f" ({bounds[0]:.4f}–{bounds[1]:.4f})" if bounds else ""
