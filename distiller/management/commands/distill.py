"""The seed tool's CLI on the distillation engine.

    manage.py distill auto --topic "Customer Support" --levels 3 --tags-per-level 5 --questions-per-tag 20 --wait
    manage.py distill auto --topic "Customer Support" ... --estimate      (prints calls, tokens, cost; starts nothing)
    manage.py distill tags --parent "Billing" --count 10 [--existing "Refunds,Invoices"] [--topic T --save]
    manage.py distill questions --intent "Refunds" --intent-path "Billing -> Refunds" --count 50 [--topic T --save]
    manage.py distill auto ... --judge deepseek --judge-action refine --hard-negatives 5 --out-of-scope 50
    manage.py distill judge --topic "Customer Support" [--intent "Billing -> Refunds"] --judge deepseek [--wait]
    manage.py distill status|cancel|resume RUN_ID [--wait] [--output FILE]
"""

import json
import random
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from config.embedded_redis import embedded_redis_ensure
from datasets.models import IntentNode, Topic
from datasets.selectors import topic_by_name_or_id
from datasets.services import DatasetError, topic_preset_apply, topic_preset_by_name
from distiller import prompts
from distiller.jobs import run_work
from distiller.llm import Endpoint, LLMClient, LLMError
from distiller.mix import DEFAULT_MIX, mix_draw
from distiller.models import DistillationRun
from distiller.ratelimit import ProviderLimiter
from distiller.seed_files import run_write_jsonl, taxonomy_write_json
from distiller.selectors import (
    distill_worker_count,
    judge_summary,
    run_endpoints_describe,
    run_progress,
    run_stall_hint,
    run_unit_problems,
)
from distiller.services import (
    provider_resolve,
    run_cancel,
    run_check,
    run_estimate_for,
    run_resume,
    run_start,
    topic_name_clean,
)
from distiller.services.questions import EXISTING_IN_PROMPT

# One-off calls: the same bounds as a run's tags per level and questions per intent.
COUNT_LIMITS = {"tags": (1, 50), "questions": (1, 10000)}


class Command(BaseCommand):
    help = "Distil a taxonomy and questions from an LLM (auto), or ask for tags or questions once."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        auto = sub.add_parser("auto", help="taxonomy then questions, as a run on the distill workers")
        auto.add_argument("--topic", required=True, help="topic name (created when missing)")
        auto.add_argument("--levels", type=int)
        auto.add_argument("--tags-per-level", type=int)
        auto.add_argument("--questions-per-tag", type=int)
        auto.add_argument("--questions-per-call", type=int)
        auto.add_argument("--language", help="the language of the intent names (and of the questions, without "
                                             "--languages)")
        auto.add_argument("--languages", metavar="en,es",
                          help="the questions' languages, spread evenly over each intent (default: the topic's "
                               "preset's languages, else --language)")
        auto.add_argument("--preset", help="a domain preset for a new topic (banking, telecom...: GET /api/v1/presets/)")
        auto.add_argument("--provider", help="provider name or kind (deepseek, openrouter, openai, custom)")
        leaf = auto.add_mutually_exclusive_group()
        leaf.add_argument("--leaf-only", dest="leaf_only", action="store_true", default=None)
        leaf.add_argument("--all-nodes", dest="leaf_only", action="store_false")
        auto.add_argument("--seed", type=int)
        auto.add_argument("--workers", type=int, help="work jobs to queue (default: one per live distill worker)")
        auto.add_argument("--wait", action="store_true",
                          help="show progress until the run ends; with no distill worker running, work here")
        auto.add_argument("--output", help="write the questions as JSONL (the seed's format); implies --wait")
        auto.add_argument("--export-taxonomy", help="write the taxonomy as JSON; implies --wait")
        auto.add_argument("--estimate", action="store_true",
                          help="print the estimated calls, tokens and cost, and exit without starting a run")
        auto.add_argument("--extend", action="store_true",
                          help="the topic already has intents: add a taxonomy beside them anyway (refused without)")
        _quality_arguments(auto)
        auto.add_argument("--out-of-scope", type=int, metavar="N",
                          help="also write N questions near the topic but outside every intent, into an "
                               "out-of-scope intent")
        judge = sub.add_parser("judge", help="judge a topic's existing questions (those without a verdict)")
        judge.add_argument("--topic", required=True, help="topic name or id")
        judge.add_argument("--intent", default="", help="only this intent's subtree (a name or a path A -> B)")
        judge.add_argument("--judge", required=True, help="the judge: a provider's name or kind")
        judge.add_argument("--judge-threshold", type=float)
        judge.add_argument("--judge-action", choices=["mark", "reject", "refine"],
                           help="below the threshold: mark (default), reject, or refine with --provider")
        judge.add_argument("--refine-rounds", type=int)
        judge.add_argument("--provider", help="the teacher that rewrites questions (--judge-action refine)")
        judge.add_argument("--workers", type=int)
        judge.add_argument("--wait", action="store_true")
        for name, helptext in (("tags", "propose child intents of one node once"),
                               ("questions", "write questions for one intent once")):
            one = sub.add_parser(name, help=helptext)
            one.add_argument("--provider")
            one.add_argument("--language", default="en")
            one.add_argument("--count", type=int, default=10)
            one.add_argument("--topic", default="", help="topic name (for the prompt; with --save, where to save)")
            one.add_argument("--save", action="store_true",
                             help="instead of printing, run it on the workers into --topic (waits; works "
                                  "in-process when no distill worker runs)")
            if name == "tags":
                one.add_argument("--parent", default="", help="parent intent name or path (A -> B)")
                one.add_argument("--existing", default="", help="comma-separated sibling names to avoid")
            else:
                one.add_argument("--intent", required=True)
                one.add_argument("--languages", metavar="en,es",
                                 help="with --save: the questions' languages, spread evenly over each intent "
                                      "(default: the topic's preset's languages, else --language)")
                one.add_argument("--intent-path", default="", help='e.g. "Support -> Billing -> Refunds"')
                _quality_arguments(one, note=" (with --save)")

        for name, helptext in (("status", "show a run's progress and problems"), ("cancel", "stop a run"),
                               ("resume", "continue a failed, cancelled or stalled run")):
            one = sub.add_parser(name, help=helptext)
            one.add_argument("run", type=int, help="run id")
            if name == "resume":
                one.add_argument("--wait", action="store_true",
                                 help="show progress until the run ends; with no distill worker running, work here")
                one.add_argument("--output", help="write the run's questions as JSONL (the seed's format); "
                                                  "implies --wait")

    def handle(self, *args, **o):
        # On the embedded defaults with no `make demo` running, a Redis of this process's own (the
        # rate limiter and leases need one); no worker listens to it, so --wait works here.
        embedded_redis_ensure()
        try:
            return getattr(self, f"handle_{o['action']}")(o)
        except DatasetError as exc:
            raise CommandError(exc.message) from None
        except LLMError as exc:
            raise CommandError(exc.message) from None

    # --- auto ---------------------------------------------------------------------------------

    def handle_auto(self, o):
        parameters = {"levels": o["levels"], "tags_per_level": o["tags_per_level"],
                      "questions_per_intent": o["questions_per_tag"], "questions_per_call": o["questions_per_call"],
                      "language": o["language"], "languages": o["languages"], "leaf_only": o["leaf_only"],
                      "seed": o["seed"],
                      "out_of_scope": o["out_of_scope"], **_quality_parameters(o)}
        # Everything is checked before anything is created: a refused run leaves no empty topic.
        name = topic_name_clean(o["topic"])
        provider = provider_resolve(o["provider"])
        topic = Topic.objects.filter(name=name).first()
        if o.get("preset") and topic is not None:
            raise CommandError(f"{name!r} exists already: a preset starts a new topic.")
        try:
            preset = topic_preset_by_name(o["preset"]) if o.get("preset") else None
        except DatasetError as exc:
            raise CommandError(exc.message) from None
        new_topic = topic_preset_apply(topic=Topic(name=name), preset=preset) if preset else Topic(name=name)
        intents = IntentNode.objects.filter(topic=topic).count() if topic else 0
        if intents and not o["extend"]:
            raise CommandError(
                f"{name!r} already has {intents} intents: `distill auto` would grow a second taxonomy beside them. "
                f"Pass --extend to add one anyway, or write questions for the existing intents with "
                f"`manage.py distill questions --topic {name!r} --intent-path ... --save`.")
        if o["estimate"]:
            # An unsaved topic for a new name: estimating must not create anything.
            e = run_estimate_for(topic=topic or new_topic, provider=provider, kind="auto", **parameters)
            extra = "".join(f", {e[key]} {label}" for key, label in (
                ("contrast_calls", "hard-negative"), ("out_of_scope_calls", "out-of-scope"),
                ("judge_calls", f"judge ({e['judge']})")) if e[key])
            self.stdout.write(f"Estimate on {e['provider']} ({e['model']}): {e['calls']} calls ({e['taxonomy_calls']} "
                              f"taxonomy, {e['question_calls']} questions{extra}), {e['intents']} intents, "
                              f"{e['questions']} "
                              f"questions, {e['tokens_in']:,} tokens in, {e['tokens_out']:,} tokens out, ${e['cost']}. "
                              "Nothing was started.")
            return
        run_check(topic=topic or new_topic, provider=provider, kind="auto", **parameters)
        # The files need the finished run, so asking for them means waiting for it.
        wait = o["wait"] or bool(o["output"] or o["export_taxonomy"])
        run = self._start_and_follow(topic=topic, topic_name=name, kind="auto", provider=provider, wait=wait,
                                     workers=o["workers"], new_topic=new_topic, **parameters)
        if run is None:
            return
        self._write_files(run, o)

    def _write_files(self, run, o):
        if o.get("output"):
            lines = run_write_jsonl(run=run, path=o["output"])
            self.stdout.write(f"Wrote {lines} questions to {o['output']}.")
        if o.get("export_taxonomy"):
            count = taxonomy_write_json(topic=run.topic, path=o["export_taxonomy"])
            self.stdout.write(f"Wrote {count} intents to {o['export_taxonomy']}.")

    def _start_and_follow(self, *, topic, kind, provider, wait, workers=None, topic_name="", new_topic=None,
                          **parameters):
        """Start a run (creating the topic named `topic_name` when `topic` is None); with `wait`, show its
        progress (working here when no live worker runs) and return it."""
        provider = provider_resolve(provider)
        live = distill_worker_count()
        inline = wait and not live and not workers
        with transaction.atomic():  # a topic created for a run that is refused after all is not kept
            if topic is None:  # `new_topic`: the unsaved topic with its preset applied
                topic = Topic.objects.filter(name=topic_name).first()
                if topic is None:
                    topic = new_topic or Topic(name=topic_name)
                    topic.save()
            run = run_start(topic=topic, provider=provider, kind=kind, workers=0 if inline else workers,
                            **parameters)
        e = run.estimate
        pool = run.parameters.get("pool") or []
        on = " + ".join(f"{m['provider']} (weight {m['weight']:g})" for m in pool) if pool else provider.name
        self.stdout.write(f"Run #{run.pk} on {on} ({e['model']}): about {e['calls']} calls, "
                          f"{e['tokens_in'] + e['tokens_out']:,} tokens, ${e['cost']}.")
        self.stdout.write(f"  calls {run_endpoints_describe(run)} (fixed at the start: every worker uses it)")
        return self._wait_for(run, wait=wait, inline=inline, live=live)

    def _wait_for(self, run, *, wait: bool, inline: bool, live: int):
        if not wait:
            self.stdout.write(f"Queued for {live} distill worker(s). Follow it with `manage.py distill status "
                              f"{run.pk}`, in the admin or with GET /api/v1/runs/{run.pk}/.")
            return None
        if inline:
            self.stdout.write("No distill worker is running: working in this process.")
            threading.Thread(target=run_work, args=(run.pk,), daemon=True).start()
        run = self._follow(run, inline=inline)
        if run.status != DistillationRun.Status.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} {run.status}: {run.error or 'see the admin'}")
        for warning in run.warnings[:20]:
            self.stdout.write(f"  short: {warning}")
        self.stdout.write(f"Run #{run.pk} succeeded: {run.intents_created} intents, {run.questions_created} "
                          f"questions, {run.calls} calls, {run.tokens_in + run.tokens_out:,} tokens, ${run.cost}.")
        if run.hard_negatives_created or run.out_of_scope_created:
            self.stdout.write(f"  of the questions: {run.hard_negatives_created} hard negatives, "
                              f"{run.out_of_scope_created} out of scope.")
        if run.judge_provider_id:
            self.stdout.write(f"  judge: {judge_summary(run)}")
        return run

    # --- judge --------------------------------------------------------------------------------

    def handle_judge(self, o):
        topic = topic_by_name_or_id(o["topic"])
        if topic is None:
            raise CommandError(f"No topic named {o['topic']!r} (or with that id).")
        node = None
        if o["intent"]:
            path = [part.strip() for part in o["intent"].split("->") if part.strip()]
            node = self._node_at(topic, path) if len(path) > 1 else (
                IntentNode.objects.filter(topic=topic, name__iexact=path[0]).order_by("sort_key").first())
            if node is None:
                raise CommandError(f"No intent {o['intent']!r} in {topic.name!r}.")
        parameters = {"judge": o["judge"], "judge_threshold": o["judge_threshold"], "judge_action": o["judge_action"],
                      "judge_refine_rounds": o["refine_rounds"], "intent_id": node.pk if node else None}
        # Only a refining run calls the teacher: without --provider the judge is the run's provider too.
        provider = provider_resolve(o["provider"] or o["judge"])
        run_check(topic=topic, provider=provider, kind="judge", **parameters)
        self._start_and_follow(topic=topic, kind="judge", provider=provider, wait=o["wait"], workers=o["workers"],
                               **parameters)

    # --- status, cancel, resume ---------------------------------------------------------------

    def _run(self, o) -> DistillationRun:
        run = DistillationRun.objects.select_related("topic", "provider").filter(pk=o["run"]).first()
        if run is None:
            raise CommandError(f"No run #{o['run']}.")
        return run

    def handle_status(self, o):
        run = self._run(o)
        p = run_progress(run=run)
        eta = f", ETA {p['eta_seconds']:.0f} s" if p["eta_seconds"] is not None else ""
        self.stdout.write(f"Run #{run.pk} ({run.kind}) of {run.topic.name!r} on {run.provider.name}: {run.status}, "
                          f"{p['percent']}% ({p['stage']}{eta})")
        self.stdout.write(f"  calls {run_endpoints_describe(run)}")
        if p["stalled"] and run.status == DistillationRun.Status.RUNNING:
            self.stdout.write(f"  STALLED: no worker is working on it. Start a worker (manage.py rqworker distill) "
                              f"and run `manage.py distill resume {run.pk}`.")
        elif p["stalled"]:
            self.stdout.write(f"  STALLED: {p['hint']}")
        if p["waiting_for_slots"]:
            self.stdout.write(f"  waiting for a free slot of {run.provider.name} ({run.provider.max_concurrency} calls "
                              "at once across all workers, or its requests per minute): other runs or workers "
                              "hold them")
        self.stdout.write(f"  units {p['units_done']}/{p['units_total']} ({p['units_failed']} failed) · "
                          f"{p['intents_created']} intents · {p['questions_created']}/{p['questions_target']} "
                          f"questions · {p['duplicates_dropped']} duplicates and {p['near_duplicates_dropped']} "
                          f"near duplicates dropped")
        self.stdout.write(f"  {p['calls']} calls · {p['tokens_in'] + p['tokens_out']:,} tokens · ${p['cost']}")
        if run.hard_negatives_created or run.out_of_scope_created:
            self.stdout.write(f"  of the questions: {run.hard_negatives_created} hard negatives, "
                              f"{run.out_of_scope_created} out of scope")
        if run.judge_provider_id:
            self.stdout.write(f"  judge: {judge_summary(run)}")
        for warning in run.warnings[:20]:
            if warning.startswith("pool: "):
                self.stdout.write(f"  {warning}")
        if run.error:
            self.stdout.write(f"  error: {run.error}")
        for problem in run_unit_problems(run=run, limit=20):
            # Named by intent (number and name), as people know them; a unit's key is an internal id.
            where = problem["intent"] or f"the top level of {run.topic.name!r}"
            what = "questions" if problem["kind"] == "questions" else "intents"
            self.stdout.write(f"  {problem['status']} {problem['kind']} of {where}: {problem['error'] or 'short'} "
                              f"({problem['produced']}/{problem['target']} {what})")

    def handle_cancel(self, o):
        run = run_cancel(run=self._run(o))
        self.stdout.write(f"Run #{run.pk} cancelled; what it wrote is kept. Resume it with "
                          f"`manage.py distill resume {run.pk}`.")

    def handle_resume(self, o):
        live = distill_worker_count()
        wait = o["wait"] or bool(o["output"])  # the file needs the finished run
        inline = wait and not live
        run = run_resume(run=self._run(o), workers=0 if inline else None)
        self.stdout.write(f"Run #{run.pk} resumed at {run.units_done}/{run.units_total} units.")
        run = self._wait_for(run, wait=wait, inline=inline, live=live)
        if run is not None:
            self._write_files(run, o)

    def _node_at(self, topic, path: list[str]):
        """The intent at `path` (names, case-insensitive; a leading topic name is skipped) in `topic`, or None."""
        if path and path[0] == topic.name:
            path = path[1:]
        node = None
        for name in path:
            node = IntentNode.objects.filter(topic=topic, parent=node, name__iexact=name).first()
            if node is None:
                return None
        return node

    def _saved_node(self, o, path: list[str]):
        """The topic named by --topic and the intent at `path` under it (None for the topic itself)."""
        if not o["topic"]:
            raise CommandError("--save needs --topic.")
        topic = Topic.objects.filter(name=o["topic"]).first()
        if topic is None:
            raise CommandError(f"No topic named {o['topic']!r}.")
        if path and path[0] == topic.name:
            path = path[1:]
        node = None
        for name in path:
            node = IntentNode.objects.filter(topic=topic, parent=node, name__iexact=name).first()
            if node is None:
                raise CommandError(f"No intent {name!r} on that path in {topic.name!r}.")
        return topic, node

    def _follow(self, run: DistillationRun, *, inline: bool = False) -> DistillationRun:
        bar = tqdm(total=max(1, run.units_total), unit="unit", desc=f"run #{run.pk}", dynamic_ncols=True)
        checked = 0.0
        while True:
            run.refresh_from_db()
            bar.total = max(1, run.units_total)
            bar.n = run.units_done
            bar.set_postfix_str(f"{run.stage} · {run.intents_created} intents · {run.questions_created}/"
                                f"{run.questions_target} questions · {run.calls} calls")
            bar.refresh()
            if not run.is_active:
                bar.close()
                return run
            if not inline and time.monotonic() - checked >= 2:
                checked = time.monotonic()
                inline = self._take_over_if_stalled(run, bar)
            time.sleep(0.5)

    def _take_over_if_stalled(self, run: DistillationRun, bar) -> bool:
        """Waiting on a run no worker will work on: work on a queued one here; give up on a running one."""
        hint = run_stall_hint(run=run)
        if not hint:
            return False
        if run.status == DistillationRun.Status.QUEUED:
            bar.write(f"Run #{run.pk} is queued but no live distill worker will take it: working in this process.")
            threading.Thread(target=run_work, args=(run.pk,), daemon=True).start()
            return True
        bar.close()
        raise CommandError(f"Run #{run.pk} stalled: its workers stopped (killed?) and no other works on it. Start "
                           f"a worker (manage.py rqworker distill) and run `manage.py distill resume {run.pk}`, or "
                           f"`manage.py distill resume {run.pk} --wait` to work on it here.")

    # --- one-off calls ------------------------------------------------------------------------

    def _client(self, o) -> LLMClient:
        endpoint = Endpoint.from_provider(provider_resolve(o["provider"]))
        endpoint.check()
        return LLMClient(endpoint, limiter=ProviderLimiter.for_endpoint(endpoint))

    def _count(self, o, action: str) -> int:
        low, high = COUNT_LIMITS[action]
        if not low <= o["count"] <= high:
            raise CommandError(f"--count must be between {low} and {high} (got {o['count']}).")
        return o["count"]

    def handle_tags(self, o):
        self._count(o, "tags")
        path = [part.strip() for part in o["parent"].split("->") if part.strip()]
        if o["save"]:
            topic, node = self._saved_node(o, path)
            self._start_and_follow(topic=topic, kind="taxonomy", provider=o["provider"], wait=True, levels=1,
                                   tags_per_level=o["count"], language=o["language"],
                                   parent_id=node.pk if node else None)
            return
        existing = [name.strip() for name in o["existing"].split(",") if name.strip()]
        topic = o["topic"] or (path[0] if path else "General")
        if o["topic"] and path:
            node = IntentNode.objects.filter(topic__name=o["topic"], name__iexact=path[-1]).first()
            if node:
                existing += list(node.children.values_list("name", flat=True))
        messages = prompts.TAXONOMY.messages(topic=topic, parent_path=path, count=o["count"],
                                            language=o["language"], existing=existing)
        answer = self._client(o).complete_json(messages=messages, schema=prompts.TAXONOMY.Answer,
                                               schema_name="taxonomy")
        self.stdout.write(json.dumps([i.model_dump() for i in answer.intents], ensure_ascii=False, indent=2))

    def handle_questions(self, o):
        self._count(o, "questions")
        path = [part.strip() for part in o["intent_path"].split("->") if part.strip()] or [o["intent"]]
        if o["save"]:
            topic, node = self._saved_node(o, path)
            if node is None:
                raise CommandError("Give the intent's path with --intent-path.")
            # The leaves under the intent (the intent itself when it is a leaf) get --count each.
            self._start_and_follow(topic=topic, kind="questions", provider=o["provider"], wait=True,
                                   questions_per_intent=o["count"], language=o["language"],
                                   languages=o["languages"], intent_id=node.pk, leaf_only=True,
                                   **_quality_parameters(o))
            return
        if o["languages"]:
            raise CommandError("--languages spreads a saved run over languages: add --topic and --save "
                               "(without --save, --language names the one language to print).")
        if any(value for value in _quality_parameters(o).values()):
            raise CommandError("--judge and --hard-negatives work on saved questions: add --topic and --save.")
        # The intent's questions in --topic, when it is there: the model must avoid them too.
        topic = Topic.objects.filter(name=o["topic"]).first() if o["topic"] else None
        node = self._node_at(topic, path) if topic else None
        known = list(node.questions.order_by("id").values_list("text", flat=True)) if node else []
        rng = random.Random(0)
        items = [{"n": n, **mix_draw(DEFAULT_MIX, rng)} for n in range(1, o["count"] + 1)]
        client, texts = self._client(o), []
        for start in range(0, len(items), 10):
            messages = prompts.QUESTIONS.messages(topic=o["topic"] or path[0], intent_path=path,
                                                 description=node.description if node else "",
                                                 language=o["language"], items=items[start:start + 10],
                                                 existing=(known + texts)[-EXISTING_IN_PROMPT:])
            answer = client.complete_json(messages=messages, schema=prompts.QUESTIONS.Answer, schema_name="questions")
            texts += [q.text for q in answer.questions]
        for text in texts:
            self.stdout.write(text)


def _quality_arguments(parser, note: str = "") -> None:
    parser.add_argument("--judge", help=f"an LLM judge (a provider's name or kind; also the teacher's own){note}")
    parser.add_argument("--judge-threshold", type=float, help="0-1: the score a question must reach (default 0.5)")
    parser.add_argument("--judge-action", choices=["mark", "reject", "refine"],
                        help="below the threshold: mark (default), reject, or refine (the teacher rewrites it)")
    parser.add_argument("--refine-rounds", type=int, help="refine: rewrites per question at most (default 2)")
    parser.add_argument("--hard-negatives", type=int, metavar="N",
                        help=f"N near-boundary questions per pair of neighbouring intents{note}")
    parser.add_argument("--pool", metavar="NAME=WEIGHT,...",
                        help=f'a teacher pool instead of --provider, e.g. "deepseek=3,openrouter=1"{note}')


def _quality_parameters(o) -> dict:
    return {"judge": o.get("judge"), "judge_threshold": o.get("judge_threshold"),
            "judge_action": o.get("judge_action"), "judge_refine_rounds": o.get("refine_rounds"),
            "hard_negatives": o.get("hard_negatives"), "pool": _pool_parse(o.get("pool"))}


def _pool_parse(raw: str | None) -> list[dict] | None:
    """"deepseek=3,openrouter=1" as the run's pool (a name without weight weighs 1)."""
    if not raw:
        return None
    members = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        name, _, weight = part.rpartition("=") if "=" in part else (part, "", "1")
        try:
            members.append({"provider": name.strip(), "weight": float(weight)})
        except ValueError:
            raise CommandError(f"--pool: {weight!r} is not a weight (in {part!r}); write NAME=WEIGHT.") from None
    return members
