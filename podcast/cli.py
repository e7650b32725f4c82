"""The `podcast` command: a thin typer layer over podcast.pipeline.

One handler turns :class:`PodcastError` into one line on stderr and exit 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import pipeline, status
from .config import SHOW_FILE, find_show_dir
from .errors import PodcastError
from .models import VoicedSegment
from .util import clock

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="Turn collected tech news into a narrated, published podcast episode.",
)
err = Console(stderr=True)
out = Console()

SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only news newer than this: 24h, 3d, 2w or a date (default: [sources] since)."),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s", help="A feed URL, page URL or local file (repeatable)."),
]
DirOpt = Annotated[Path | None, typer.Option("--dir", "-C", help="The show folder (default: find show.toml upwards).")]
WaitOpt = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait for another run on this show to finish (default: fail at once)."),
]


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
    for line in summary.collected:
        err.print(escape(line), highlight=False)
    out.print(
        f"[green]EP{summary.number}[/green] {summary.title} — {clock(summary.duration_s)}, "
        f"{summary.segments} segments ({summary.synthesized} synthesized, {summary.cached} cached"
        + (f", {len(summary.fell_back)} fell back: {', '.join(summary.fell_back)}" if summary.fell_back else "")
        + (f", {summary.retried} requests retried" if summary.retried else "")
        + ")"
    )
    out.print(f"  {summary.folder}")
    for w in summary.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")


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
def collect(source: SourceOpt = None, since: SinceOpt = None, dir_: DirOpt = None, wait: WaitOpt = 0.0) -> None:
    """Fetch the configured sources (or --source) into the store."""
    result = pipeline.collect_only(_show(dir_), source, since=since, wait=wait)
    for line in result.report_lines():
        out.print(line)


@app.command()
def make(
    source: SourceOpt = None,
    since: SinceOpt = None,
    minutes: Annotated[
        float | None, typer.Option("--minutes", min=0.5, max=180, help="Target length (default: [writer] minutes).")
    ] = None,
    date: Annotated[str | None, typer.Option(help="Episode date, YYYY-MM-DD (default: today).")] = None,
    dir_: DirOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """collect → write → voice → mix → publish one new episode."""
    day = _date(date)
    hooks = _Hooks()
    try:
        summary = pipeline.make(_show(dir_), source, date=day, since=since, minutes=minutes, hooks=hooks, wait=wait)
    finally:
        hooks.close()
    _report(summary)


@app.command()
def regenerate(
    episode: Annotated[str, typer.Argument(help="Episode number, folder name or slug.")],
    voice: Annotated[str | None, typer.Option("--voice", help="Rebuild with another voice preset.")] = None,
    from_sources: Annotated[
        bool, typer.Option("--from-sources", help="Rewrite script.md from sources.json (the edited one is kept as a .bak).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the segments that would be re-synthesized, and why; change nothing.")
    ] = False,
    republish_date: Annotated[
        bool, typer.Option("--republish-date", help="Give the episode a new publication date (now).")
    ] = False,
    dir_: DirOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """Rebuild an episode after its script.md was edited (only changed text is re-voiced)."""
    show = _show(dir_)
    if dry_run:
        if from_sources:
            raise PodcastError("--dry-run cannot preview --from-sources (the new script is written by the run)")
        _print_plan(pipeline.regenerate_plan(show, episode, voice_preset=voice))
        return
    hooks = _Hooks()
    try:
        summary = pipeline.regenerate(
            show, episode, voice_preset=voice, from_sources=from_sources,
            republish_date=republish_date, hooks=hooks, wait=wait,
        )
    finally:
        hooks.close()
    _report(summary)
    out.print(f"  revision {summary.revision}")


def _print_plan(plan: list[pipeline.SegmentPlan]) -> None:
    from rich.table import Table

    todo = [p for p in plan if p.synthesize]
    if not todo:
        out.print(f"0 of {len(plan)} segments would be synthesized: the episode is up to date")
        return
    table = Table(title=f"{len(todo)} of {len(plan)} segments would be synthesized", title_justify="left")
    for col in ("segment", "chapter", "reason", "text"):
        table.add_column(col, overflow="fold")
    for p in todo:
        text = p.text if len(p.text) <= 50 else p.text[:49] + "…"
        table.add_row(p.id, escape(p.chapter), p.reason, escape(text))
    out.print(table)


@app.command("list")
def list_(dir_: DirOpt = None) -> None:
    """Every episode: number, date, title, duration, revision and state."""
    from rich.table import Table

    table = Table()
    for col in ("#", "date", "title", "duration", "rev", "state"):
        table.add_column(col, overflow="fold")
    for r in status.list_status(_show(dir_)):
        dur = clock(r.duration_s) if r.duration_s is not None else "—"
        colour = "green" if r.state == "published" else "red" if r.state.startswith(("broken", "missing")) else "yellow"
        table.add_row(str(r.number), r.date, escape(r.title), dur, str(r.revision or "—"),
                      f"[{colour}]{escape(r.state)}[/{colour}]")
    out.print(table)


@app.command("show")
def show_(
    episode: Annotated[str, typer.Argument(help="Episode number, folder name or slug.")],
    dir_: DirOpt = None,
) -> None:
    """One episode: its files, chapters, sources and warnings."""
    from rich.table import Table

    d = status.show_details(_show(dir_), episode)
    meta = d.meta
    if meta is not None:
        out.print(f"[bold]EP{meta.number}[/bold] {escape(meta.title)}  ({meta.pub_date.isoformat()}, "
                  f"revision {meta.revision}, voice {meta.voice or '—'}, guid {meta.guid})")
    out.print(str(d.folder))
    files = Table(title="files", title_justify="left")
    files.add_column("file")
    files.add_column("bytes", justify="right")
    for name, size in d.files:
        files.add_row(escape(name), f"{size:,}")
    out.print(files)
    if d.chapters:
        ch = Table(title="chapters", title_justify="left")
        ch.add_column("start", justify="right")
        ch.add_column("title")
        for start, title in d.chapters:
            ch.add_row(clock(start), escape(title))
        out.print(ch)
    if d.sources:
        src = Table(title="sources", title_justify="left")
        for col in ("n", "title", "url"):
            src.add_column(col, overflow="fold")
        for r in d.sources:
            src.add_row(str(r.get("n", "")), escape(str(r.get("title", ""))), escape(str(r.get("url", ""))))
        out.print(src)
    if d.warnings:
        out.print(f"[yellow]{len(d.warnings)} warning(s):[/yellow]")
        for w in d.warnings:
            out.print(f"  {escape(w)}")
    else:
        out.print("no warnings")


@app.command()
def publish(dir_: DirOpt = None, wait: WaitOpt = 0.0) -> None:
    """Rebuild feed, articles and index from what is on disk."""
    show = _show(dir_)
    for w in pipeline.publish_all(show, wait=wait):
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")
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


@app.command()
def say(
    text: Annotated[str, typer.Argument(help="The words to speak (Markdown and lexicon terms are handled as in an episode).")],
    voice: Annotated[str | None, typer.Option("--voice", help="Voice preset in voices/ (default: show.toml's).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Audio file to write (.mp3 or .wav).")] = None,
    dir_: DirOpt = None,
) -> None:
    """Audition a voice or a lexicon entry: synthesize TEXT and print where the audio is."""
    from .voice.tools import say as speak

    path = speak(text, voice, _show(dir_), output)
    out.print(f"wrote {path}")


@app.command()
def cache(
    prune: Annotated[bool, typer.Option("--prune", help="Delete cached segments no episode uses.")] = False,
    dir_: DirOpt = None,
    wait: WaitOpt = 0.0,
) -> None:
    """What the voice segment cache holds; --prune frees what no episode uses."""
    from .voice.tools import cache_stats
    from .voice.tools import prune as drop

    show = _show(dir_)
    if prune:
        removed, freed = drop(show, wait=wait)
        out.print(f"removed {removed} files, freed {freed / 1e6:.1f} MB")
        return
    st = cache_stats(show)
    out.print(
        f"{st.segments} cached segments and {st.renders} clause renders, {st.bytes / 1e6:.1f} MB; "
        f"{st.referenced} segments used by episodes, "
        f"{st.unreferenced_bytes / 1e6:.1f} MB unused (podcast cache --prune frees it); "
        f"{st.say_files} auditions, {st.say_bytes / 1e6:.1f} MB"
    )


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
    code = 0
    try:
        app()
    except SystemExit as exc:  # click ends every run this way (typer turns Ctrl-C into 130)
        if isinstance(exc.code, str):
            err.print(exc.code, highlight=False, markup=False)
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        if code == 130:
            err.print("interrupted: nothing published was changed")
    except PodcastError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        code = 1
    except KeyboardInterrupt:  # outside typer's own handling
        err.print("interrupted: nothing published was changed")
        code = 130
    _leave(code)


def _leave(code: int) -> None:
    """Exit without the interpreter's teardown. With TensorFlow Lite and the voice model
    loaded it takes 0.1–0.4 s and does nothing a finished command needs: every file is
    written, closed and renamed by now, the show lock released, ffmpeg waited for."""
    from .warmup import started

    if (worker := started()) is not None:
        worker.kill()  # it may still be loading a model this run did not need
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()

