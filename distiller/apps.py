import sys

from django.apps import AppConfig


class DistillerConfig(AppConfig):
    name = "distiller"
    verbose_name = "Distillation"

    def ready(self):
        # An RQ worker forks a fresh work horse per job and imports the job's module there; the
        # openai client takes a second or more to import on a busy machine, so a worker imports
        # the engine once, before forking, and every horse inherits it. Other commands skip it.
        if "rqworker" in sys.argv:
            import openai

            import distiller.jobs  # noqa: F401

            # The SDK imports its resource modules (and their many pydantic types) on first use.
            openai.OpenAI(api_key="preload", base_url="http://127.0.0.1:9/v1").chat.completions.create  # noqa: B018
