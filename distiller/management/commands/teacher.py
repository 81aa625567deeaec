"""Run the test teacher, an OpenAI-compatible server for development and tests (never production)."""

from django.core.management.base import BaseCommand

from distiller.teacher.server import ALL_FAULTS, DEFAULT_HANG_SECONDS, TRANSIENT_FAULTS, TeacherConfig, make_server

REFUSABLE = ("max_tokens", "temperature", "json_schema", "response_format")


class Command(BaseCommand):
    help = ("Serve the TEST teacher (a development tool imitating an OpenAI-compatible LLM) on "
            "http://HOST:PORT/v1. Point the Custom provider at it with LLM_BASE_URL=http://HOST:PORT/v1.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--latency", type=float, default=0.0, help="seconds per completion")
        parser.add_argument("--fault-rate", type=float, default=0.0, help="share of completions given a fault")
        parser.add_argument("--faults", default=",".join(TRANSIENT_FAULTS),
                            help=f"which faults, comma-separated, from {', '.join(ALL_FAULTS)}")
        parser.add_argument("--malformed-rate", type=float, default=0.0)
        parser.add_argument("--retry-after", type=float, default=1.0, help="seconds sent with 429")
        parser.add_argument("--hang-seconds", type=float, default=DEFAULT_HANG_SECONDS,
                            help="how long a hang lasts; the default outlasts the providers' default 120 s timeout")
        parser.add_argument("--fail-status", type=int, choices=[0, 400, 401, 402, 403], default=0,
                            help="answer every completion after --fail-after with this status")
        parser.add_argument("--fail-after", type=int, default=0)
        parser.add_argument("--refuse", default="", help="request parameters to refuse with a 400, comma-separated, "
                            f"from {', '.join(REFUSABLE)} (response_format: every type)")
        parser.add_argument("--accepted-fields", default="",
                            help="refuse every other top-level field with a 422 (a pydantic server), comma-separated")

    def handle(self, *args, **o):
        faults = tuple(f for f in o["faults"].split(",") if f)
        unknown = set(faults) - set(ALL_FAULTS)
        if unknown:
            self.stderr.write(f"unknown faults: {', '.join(sorted(unknown))}")
            return
        refuse = {name for name in o["refuse"].split(",") if name}
        if refuse - set(REFUSABLE):
            self.stderr.write(f"cannot refuse: {', '.join(sorted(refuse - set(REFUSABLE)))}")
            return
        response_format = "any" if "response_format" in refuse else "json_schema" if "json_schema" in refuse else ""
        config = TeacherConfig(seed=o["seed"], latency=o["latency"], fault_rate=o["fault_rate"], faults=faults,
                               malformed_rate=o["malformed_rate"], retry_after=o["retry_after"],
                               hang_seconds=o["hang_seconds"], fail_status=o["fail_status"], fail_after=o["fail_after"],
                               refuse_max_tokens="max_tokens" in refuse, refuse_temperature="temperature" in refuse,
                               refuse_response_format=response_format,
                               accepted_fields=tuple(f for f in o["accepted_fields"].split(",") if f))
        server = make_server(o["host"], o["port"], config)
        host, port = server.server_address[:2]
        self.stdout.write(f"Test teacher (development tool) on http://{host}:{port}/v1 — Ctrl-C stops it.")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
