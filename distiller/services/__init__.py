"""Writes of the distillation engine.

- runs.py: start, estimate, cancel, resume, and how a run's units are planned and ended;
- execution.py: what a worker does with a run (claim units, run their LLM calls concurrently);
- taxonomy.py / questions.py: one unit of each kind, idempotent so a killed unit can run again;
- providers.py: what a provider's server refused (request_adaptations), learned by the calls.
"""

from distiller.services.providers import (  # noqa: F401
    provider_adaptations_forget,
    provider_adaptations_record,
    provider_adaptations_text,
)
from distiller.services.runs import (  # noqa: F401
    RunError,
    provider_resolve,
    run_cancel,
    run_check,
    run_estimate,
    run_estimate_for,
    run_parameters,
    run_resume,
    run_start,
    topic_name_clean,
)
