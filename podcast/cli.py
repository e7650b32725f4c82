"""The `podcast` command: a thin typer layer over podcast.pipeline.

One handler turns :class:`PodcastError` into one line on stderr and exit 1.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import pipeline
from .config import SHOW_FILE, find_show_dir
from .errors import PodcastError
from .models import VoicedSegment

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Turn collected tech news into a narrated, published podcast episode.",
)
err = Console(stderr=True)
out = Console()

SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help="A feed URL, page URL or local file (repeatable)."),
]
DirOpt = Annotated[Path | None, typer.Option("--dir", "-C", help="The show folder (default: find show.toml upwards).")]


def _show(dir_: Path | None) -> Path:
    return find_show_dir(dir_)


class _Hooks(pipeline.Hooks):
    """Rich progress for the long steps."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.task: int | None = None
        super().__init__(stage=self._stage, segment=self._segment)

    def _stage(self, name: str) -> None:
        self.close()
        err.print(f"[bold]{name}[/bold] …")

    def _segment(self, done: int, total: int, seg: VoicedSegment) -> None:
        if self.progress is None:
            self.progress = Progress(
                TextColumn("  voicing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.description}"), console=err, transient=True,
            )
            self.progress.start()
            self.task = self.progress.add_task("", total=total)
        assert self.task is not None
        self.progress.update(self.task, completed=done, description=seg.id)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def _report(summary: pipeline.RunSummary) -> None:
    m, s = divmod(round(summary.duration_s), 60)
    out.print(
        f"[green]EP{summary.number}[/green] {summary.title} — {m}:{s:02d}, "
        f"{summary.segments} segments ({summary.synthesized} synthesized, {summary.cached} cached"
        + (f", {len(summary.fell_back)} fell back: {', '.join(summary.fell_back)}" if summary.fell_back else "")
        + ")"
    )
    out.print(f"  {summary.folder}")
    for w in summary.warnings:
        err.print(f"[yellow]warning:[/yellow] {w}")


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Folder for the new show.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing show.toml.")] = False,
) -> None:
    """Scaffold show.toml, voices/, episodes/ and a sample source."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / SHOW_FILE
    if target.exists() and not force:
        raise PodcastError(f"{target} already exists (use --force to overwrite)")
    pkg = resources.files("podcast")
    target.write_text((pkg / "skeleton" / "show.toml").read_text(encoding="utf-8"), encoding="utf-8")
    voices = directory / "voices"
    voices.mkdir(exist_ok=True)
    for entry in (pkg / "_voices").iterdir():
        if entry.name.endswith(".toml") and not (voices / entry.name).exists():
            (voices / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    (directory / "episodes").mkdir(exist_ok=True)
    (directory / "sources").mkdir(exist_ok=True)
    sample = directory / "sources" / "sample-digest.md"
    if not sample.exists():
        sample.write_text((pkg / "sample" / "digest.md").read_text(encoding="utf-8"), encoding="utf-8")
    out.print(f"Created a show in {directory.resolve()}: edit {SHOW_FILE}, then run 'podcast make'.")


@app.command()
def collect(source: SourceOpt = None, dir_: DirOpt = None) -> None:
    """Fetch the configured sources (or --source) into the store."""
    result = pipeline.collect_only(_show(dir_), source)
    for line in result.report_lines():
        out.print(line)


@app.command()
def make(
    source: SourceOpt = None,
    date: Annotated[str | None, typer.Option(help="Episode date, YYYY-MM-DD (default: today).")] = None,
    dir_: DirOpt = None,
) -> None:
    """collect → write → voice → mix → publish one new episode."""
    day = _date(date)
    hooks = _Hooks()
    try:
        summary = pipeline.make(_show(dir_), source, date=day, hooks=hooks)
    finally:
        hooks.close()
    _report(summary)


@app.command()
def regenerate(
    episode: Annotated[str, typer.Argument(help="Episode number, folder name or slug.")],
    voice: Annotated[str | None, typer.Option("--voice", help="Rebuild with another voice preset.")] = None,
    dir_: DirOpt = None,
) -> None:
    """Rebuild an episode after its script.md was edited (only changed text is re-voiced)."""
    hooks = _Hooks()
    try:
        summary = pipeline.regenerate(_show(dir_), episode, voice_preset=voice, hooks=hooks)
    finally:
        hooks.close()
    _report(summary)


@app.command()
def publish(dir_: DirOpt = None) -> None:
    """Rebuild feed, articles and index from what is on disk."""
    show = _show(dir_)
    for w in pipeline.publish_all(show):
        err.print(f"[yellow]warning:[/yellow] {w}")
    out.print(f"Published {pipeline.episodes_dir(show) / 'feed.xml'}")


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port on localhost.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    dir_: DirOpt = None,
) -> None:
    """Preview the site and feed on localhost (Range requests work, so players can seek)."""
    from .serve import serve as run

    run(pipeline.episodes_dir(_show(dir_)), host=host, port=port, announce=out.print)


@app.command()
def voices() -> None:
    """List the voices the configured engines offer."""
    from .voice.engines import ENGINES, get_engine

    for name in ENGINES:
        try:
            engine = get_engine(name)
            names = engine.voices()
        except PodcastError as exc:
            out.print(f"{name}: unavailable — {exc}")
            continue
        out.print(f"{name}: {', '.join(names)}")


def _date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise PodcastError(f"--date {value!r} is not a date like 2026-06-13") from None


def main() -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(message)s",
        handlers=[RichHandler(console=err, show_time=False, show_path=False)],
    )
    try:
        app()
    except PodcastError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted: nothing published was changed")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()

