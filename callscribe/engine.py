"""The one place an ASR engine is built. `serve`, the CLI's commands, the embedded worker and
`callscribe worker` all come here with the same `Settings`, so every process of a deployment
runs the same model, engine and options; only how many decodes run at once depends on the
process's role."""

from asr_core.engines import Engine
from callscribe.config import Role, Settings


def build_engine(settings: Settings, role: Role = "cli") -> Engine:
    """Raises `asr_core.errors.AsrError` (with the reason) when the model cannot be loaded."""
    from asr_core.engines import load_engine

    plan = settings.decode_plan(role)
    return load_engine(
        settings.model,
        cache_dir=settings.model_cache_dir,
        engine=settings.engine,
        funaudio=settings.funaudio_options(plan.threads),
        device=settings.device,
        compute_type=settings.compute_type,
        cpu_threads=plan.threads,
        num_workers=plan.parallel,
    )
