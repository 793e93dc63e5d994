"""The ``throttle-lab`` command: run an experiment, race designs, or serve the mock provider.

    throttle-lab simulate throttler --requests 300 --server-rpm 60 --server-window 10 --out run.png
    throttle-lab compare article throttler adaptive --requests 200 --server-rpm 60 --out race.png
    throttle-lab serve --port 8000 --rpm 180 --tpm 90000 --window 1
    throttle-lab lessons [DIR] [--copy-only] [--no-browser] [--port N]
    throttle-lab batch IN.jsonl --out OUT.jsonl --base-url URL [--rpm N] [--tpm N] [--dry-run | --simulate]

``simulate`` prints the run's summary (``--out`` also saves its dashboard: timeline, rates, in flight);
``compare`` prints one row per design (``--out`` saves them side by side).  Both run on virtual time
against the in-process mock server, so they finish in a moment and give the same numbers every time.
``serve`` is ``python -m mock_server`` under another name: the same options, a real HTTP server.
``lessons`` copies the lesson notebooks into DIR (default ``./throttle-lab-lessons``), never overwriting
a copy the learner edited, and opens JupyterLab on them (see :mod:`throttle_lab.lab.lessons`).
``batch`` runs an OpenAI Batch API JSONL file against any OpenAI-compatible server under its limits,
resumably (see :mod:`throttle_lab.batch`; its exit statuses are listed in ``throttle-lab batch --help``).

Bad arguments exit with status 2 and say what is wrong, as argparse programs do.  matplotlib is only
imported for ``--out`` (with the non-interactive Agg backend, so it works without a display).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from mock_server.cli import limit_arg, positive_int_arg, schedule_arg

from ..core.runtime import VirtualTimeError
from ..core.validation import is_real
from .experiments import DESIGNS, Workload, compare, simulate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mock_server import ServerConfig

__all__ = ["build_parser", "main"]

_PROG = "throttle-lab"
_IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


# ---------------------------------------------------------------------------------------------- types
def _number(*, positive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not is_real(value) or value < 0 or (positive and value == 0):
            raise argparse.ArgumentTypeError(
                f"expected a number {'> 0' if positive else '>= 0'}, got {text!r}"
            )
        return value

    parse.__name__ = "positive number" if positive else "number"
    return parse


def _range(text: str) -> tuple[int, int]:
    parts = text.split(":")
    try:
        low, high = (int(p) for p in parts) if len(parts) == 2 else (int(text), int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LO:HI (e.g. 20:200) or one number, got {text!r}"
        ) from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"expected 0 <= LO <= HI, got {text!r}")
    return (low, high)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (1-65535), got {text!r}")
    return port


def _design_name(text: str) -> str:
    if text not in DESIGNS and text != "all":
        choices = ", ".join(repr(name) for name in [*DESIGNS, "all"])
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {choices})")
    return text


# ---------------------------------------------------------------------------------------------- parser
def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options ``simulate`` and ``compare`` share: client limits, workload, server, output."""
    from mock_server import PRESETS

    client = parser.add_argument_group("client limits (default: the server's)")
    client.add_argument(
        "--rpm", metavar="N", type=_number(positive=True), help="requests per minute the client allows"
    )
    client.add_argument(
        "--tpm", metavar="N", type=_number(positive=True), help="tokens per minute the client allows"
    )
    client.add_argument(
        "--window",
        metavar="SECONDS",
        type=_number(positive=True),
        help="seconds over which the client lets a minute's budget burst",
    )
    client.add_argument(
        "--max-concurrent", metavar="N", type=positive_int_arg, help="requests in flight at once"
    )

    work = parser.add_argument_group("workload")
    work.add_argument(
        "--requests", metavar="N", type=positive_int_arg, default=200, help="how many requests (default: 200)"
    )
    work.add_argument(
        "--arrival",
        choices=["burst", "steady", "poisson", "bursts"],
        default="burst",
        help="when they arrive: all at once, evenly, at random, or in groups (default: burst)",
    )
    work.add_argument(
        "--per-minute",
        metavar="N",
        type=_number(positive=True),
        default=120.0,
        help="arrival rate for steady/poisson/bursts (default: 120)",
    )
    work.add_argument(
        "--burst-size", metavar="N", type=positive_int_arg, default=20, help="requests per group for bursts"
    )
    work.add_argument(
        "--prompt-tokens",
        type=_range,
        default=(20, 200),
        metavar="LO:HI",
        help="prompt sizes (default: 20:200)",
    )
    work.add_argument(
        "--max-tokens", type=_range, default=(50, 200), metavar="LO:HI", help="max_tokens (default: 50:200)"
    )
    work.add_argument("--stream", action="store_true", help="ask for streamed responses")
    work.add_argument(
        "--seed", metavar="N", type=int, default=0, help="the same seed gives the same traffic (default: 0)"
    )

    # Server options default to SUPPRESS: only what was typed overrides the preset (or the default server),
    # so "--server-rpm none" (no limit) and "not given" (60) stay different.
    s = argparse.SUPPRESS
    server = parser.add_argument_group("server (the in-process mock provider)")
    server.add_argument(
        "--server-preset",
        metavar="NAME",
        choices=list(PRESETS),
        default=s,
        help="start from a mock_server preset (lesson, short-window, brownout, ...); the options below "
        "override it",
    )
    server.add_argument(
        "--server-rpm",
        metavar="N",
        type=limit_arg,
        default=s,
        help="requests per minute, or 'none' (default: 60, or the preset's)",
    )
    server.add_argument(
        "--server-tpm",
        metavar="N",
        type=limit_arg,
        default=s,
        help="tokens per minute, or 'none' (default: none)",
    )
    server.add_argument(
        "--server-window",
        metavar="SECONDS",
        type=_number(positive=True),
        default=s,
        help="seconds the limits are enforced over (default: 60)",
    )
    server.add_argument(
        "--server-max-concurrent",
        metavar="N",
        type=limit_arg,
        default=s,
        help="requests in flight before 429",
    )
    server.add_argument(
        "--ttft",
        metavar="SECONDS",
        type=_number(positive=False),
        default=s,
        help="latency: time to first token, s (default: 0.2)",
    )
    server.add_argument(
        "--per-token",
        metavar="SECONDS",
        type=_number(positive=False),
        default=s,
        help="latency per output token, s (default: 0.01)",
    )
    server.add_argument(
        "--schedule",
        dest="limit_schedule",
        type=schedule_arg,
        action="append",
        default=s,
        metavar="AT:RPM:TPM",
        help="from AT seconds on, the server's limits become RPM and TPM (repeatable; a brownout)",
    )
    server.add_argument(
        "--server-seed", metavar="N", type=int, default=s, help="seed for the server's latency and content"
    )

    out = parser.add_argument_group("output")
    out.add_argument("--out", type=Path, metavar="FILE", help="save the figure (.png, .svg or .pdf)")
    out.add_argument(
        "--dpi", metavar="N", type=positive_int_arg, default=100, help="resolution of --out (default: 100)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``throttle-lab`` argument parser (one sub-command each: simulate, compare, serve, lessons)."""
    from mock_server.cli import build_parser as server_parser

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Watch rate-limited LLM API calls: simulate a design, race several, or serve the mock "
        "provider.  Experiments run on virtual time: hours of traffic in a second, the same every run.",
        epilog=f"Designs: {', '.join(DESIGNS)}.  '{_PROG} COMMAND --help' shows a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    sim = commands.add_parser(
        "simulate",
        help="run one design against the mock server and print its summary",
        description="Send a seeded workload through one design to the in-process mock server (virtual "
        "time) and print the summary: completed, 429s, retries, makespan, achieved rate, waits.",
        epilog="Designs: " + "; ".join(f"{name}: {text}" for name, text in DESIGNS.items()),
    )
    sim.add_argument(
        "design",
        nargs="?",
        default="throttler",
        choices=list(DESIGNS),
        metavar="DESIGN",
        help=f"how the client sends: {', '.join(DESIGNS)} (default: throttler)",
    )
    _add_run_options(sim)
    sim.add_argument("--trace", type=Path, metavar="FILE", help="also write every event (.csv or .json)")
    sim.set_defaults(parser=sim)

    cmp = commands.add_parser(
        "compare",
        help="race several designs on the same traffic and print a table",
        description="Race several designs on the same seeded traffic, each against a fresh identical "
        "mock server, and print one row per design.",
    )
    cmp.add_argument(
        "designs",
        nargs="*",
        type=_design_name,  # not choices=: argparse 3.11 checks an empty list against them and fails
        metavar="DESIGN",
        help=f"designs to race, or 'all' (default: article throttler); one of: {', '.join(DESIGNS)}",
    )
    _add_run_options(cmp)
    cmp.set_defaults(parser=cmp)

    # serve: exactly mock_server's options (its parser is the parent), under this program's name.
    serve = commands.add_parser(
        "serve",
        parents=[server_parser(prog=None)],
        add_help=False,
        help="serve the mock provider over HTTP (the same options as python -m mock_server)",
        description="An OpenAI-compatible mock LLM provider that rate-limits like the real one, served "
        "with uvicorn.  Identical to 'python -m mock_server'.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.set_defaults(parser=serve)

    from .lessons import DEFAULT_DIR, INSTALL_HINT

    lessons = commands.add_parser(
        "lessons",
        help="copy the lesson notebooks into a folder and open them in JupyterLab",
        description="Copy the lesson notebooks into DIR and open JupyterLab there.  A notebook you\n"
        "have edited is never overwritten (it is kept, and named); one you left as it was\n"
        f"is brought up to date.  Needs the lessons extra:\n\n    {INSTALL_HINT}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lessons.add_argument(
        "dir",
        nargs="?",
        type=Path,
        default=DEFAULT_DIR,
        metavar="DIR",
        help=f"where the lessons go (default: ./{DEFAULT_DIR})",
    )
    lessons.add_argument(
        "--copy-only", action="store_true", help="copy the notebooks, do not start JupyterLab"
    )
    lessons.add_argument(
        "--no-browser", action="store_true", help="start JupyterLab without opening a browser"
    )
    lessons.add_argument(
        "--port", type=_port, metavar="N", help="serve on this port (default: 8888 or the next free one)"
    )
    lessons.set_defaults(parser=lessons)
    _add_batch(commands)
    return parser


def _add_batch(commands: Any) -> None:
    """``throttle-lab batch``: its options mirror :func:`throttle_lab.batch.run_batch`'s arguments."""
    exit_codes = (
        "exit status: 0 every request has a 2xx line in OUT; 1 some failed (error lines written), are "
        "left to retry (429/5xx/network after every attempt: not written, a re-run sends them), or input "
        "lines are invalid; 2 usage; 3 base URL unreachable (nothing lost: re-run later); 4 the API key "
        "was refused (401/403); 130 interrupted (Ctrl-C: requests in flight are waited for --grace "
        "seconds and written; re-run with the same --out to finish)."
    )
    batch = commands.add_parser(
        "batch",
        help="run an OpenAI Batch API JSONL file under the provider's limits, resumably",
        description="Send every line of IN (OpenAI Batch API input JSONL: custom_id, method, url, body) "
        "to BASE_URL under rate limits -- given here, or learned from the first answer's headers -- "
        "and append each result to OUT (Batch API output JSONL) as it completes.  Re-running with the "
        "same OUT skips the custom_ids already there.  Lines whose url is /v1/messages use Anthropic's "
        "dialect (x-api-key, anthropic-version, ITPM/OTPM).",
        epilog=exit_codes,
    )
    batch.add_argument("input", type=Path, metavar="IN.jsonl", help="the requests, one JSON object a line")
    batch.add_argument("--out", type=Path, metavar="OUT.jsonl", help="the results file (appended to)")
    batch.add_argument(
        "--base-url", metavar="URL", help="e.g. http://127.0.0.1:8000 or https://api.openai.com/v1"
    )
    batch.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key (default: $OPENAI_API_KEY; for /v1/messages lines $ANTHROPIC_API_KEY)",
    )
    limits = batch.add_argument_group("limits (default: learned from the first answer's headers)")
    for option, what in (
        ("--rpm", "requests per minute"),
        ("--tpm", "tokens per minute (OpenAI lines)"),
        ("--itpm", "input tokens per minute (Anthropic lines)"),
        ("--otpm", "output tokens per minute (Anthropic lines)"),
    ):
        limits.add_argument(option, metavar="N", type=_number(positive=True), help=what)
    limits.add_argument(
        "--max-concurrent",
        metavar="N",
        type=positive_int_arg,
        help="requests in flight at once (default: 64)",
    )
    limits.add_argument(
        "--burst-seconds",
        metavar="S",
        type=_number(positive=True),
        help="seconds' worth of each limit that may go at once (default: learned, else 60)",
    )
    limits.add_argument(
        "--no-learn-limits",
        action="store_true",
        help="do not send the first request alone to read the limits from its headers",
    )
    sending = batch.add_argument_group("sending")
    sending.add_argument(
        "--max-attempts",
        metavar="N",
        type=positive_int_arg,
        default=5,
        help="attempts per request (default: 5)",
    )
    sending.add_argument(
        "--timeout", metavar="S", type=_number(positive=True), default=300.0, help="seconds per attempt"
    )
    sending.add_argument(
        "--grace",
        metavar="S",
        type=_number(positive=True),
        default=10.0,
        help="on Ctrl-C, seconds to wait for requests in flight (default: 10)",
    )
    sending.add_argument(
        "--default-max-tokens",
        metavar="N",
        type=positive_int_arg,
        default=100,
        help="reply budget assumed for a body without max_tokens (default: 100, the mock server's)",
    )
    sending.add_argument(
        "--write-exhausted",
        action="store_true",
        help="write requests whose every attempt failed as final error lines instead of retrying them "
        "on the next run",
    )
    sending.add_argument("--durable", action="store_true", help="fsync every result line (power-cut safe)")
    sending.add_argument("--no-progress", action="store_true", help="no progress bar")
    sending.add_argument("--seed", metavar="N", type=int, help="seed the retry jitter")
    plan = batch.add_argument_group("before sending")
    mode = plan.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run",
        action="store_true",
        help="check the input, estimate tokens and the duration the limits imply; send nothing",
    )
    mode.add_argument(
        "--simulate",
        action="store_true",
        help="run the job on virtual time against the in-process mock server with the same limits "
        "and print the predicted makespan; send nothing",
    )
    batch.set_defaults(parser=batch)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("throttle-lab")
    except Exception:  # pragma: no cover - running from a source tree that is not installed
        return "unknown"


# ---------------------------------------------------------------------------------------------- running
def _server_config(args: argparse.Namespace) -> ServerConfig:
    """The mock server's config: a preset (or the experiments' default, 60 RPM) plus what was typed."""
    from mock_server import ServerConfig

    overrides: dict[str, Any] = {}
    for option, field in _SERVER_FIELDS:
        if hasattr(args, option):
            overrides[field] = getattr(args, option)
    if "limit_schedule" in overrides:
        overrides["limit_schedule"] = tuple(overrides["limit_schedule"])
    preset = getattr(args, "server_preset", None)
    if preset is not None:
        return ServerConfig.preset(preset, **overrides)
    overrides.setdefault("rpm", 60)
    return ServerConfig(**overrides)


_SERVER_FIELDS = (
    ("server_rpm", "rpm"),
    ("server_tpm", "tpm"),
    ("server_window", "window"),
    ("server_max_concurrent", "max_concurrent"),
    ("ttft", "ttft"),
    ("per_token", "per_token"),
    ("limit_schedule", "limit_schedule"),
    ("server_seed", "seed"),
)


def _workload(args: argparse.Namespace) -> Workload:
    return Workload(
        requests=args.requests,
        arrival=args.arrival,
        per_minute=args.per_minute,
        burst_size=args.burst_size,
        prompt_tokens=args.prompt_tokens,
        max_tokens=args.max_tokens,
        stream=args.stream,
        seed=args.seed,
    )


def _client_limits(args: argparse.Namespace) -> dict[str, Any]:
    return {"rpm": args.rpm, "tpm": args.tpm, "window": args.window, "max_concurrent": args.max_concurrent}


def _plots() -> ModuleType:
    """throttle_lab.lab.plots, imported only now, drawing with the Agg backend (no display needed)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # a program that already drew something keeps its own backend
    from . import plots

    return plots


def _save(figure: Figure, path: Path, dpi: int) -> None:
    import matplotlib.pyplot as plt

    try:
        figure.savefig(path, dpi=dpi)
    finally:
        plt.close(figure)
    print(f"wrote {path}")


def _run_simulate(args: argparse.Namespace) -> int:
    server = _server_config(args)
    trace = simulate(args.design, _workload(args), server, **_client_limits(args))
    print(f"{args.design}: {trace.meta.get('description', DESIGNS[args.design])}")
    print(trace.summary(server.rpm))
    if args.trace is not None:
        if args.trace.suffix.lower() == ".json":
            trace.to_json(args.trace)
        else:
            trace.to_csv(args.trace)
        print(f"wrote {args.trace}")
    if args.out is not None:
        _save(_plots().dashboard(trace), args.out, args.dpi)
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    chosen = args.designs or ["article", "throttler"]
    designs = list(DESIGNS) if "all" in chosen else list(dict.fromkeys(chosen))
    server = _server_config(args)
    limits = {k: v for k, v in _client_limits(args).items() if v is not None}
    comparison = compare(designs, _workload(args), server, **limits)
    print(comparison.table())
    if args.out is not None:
        _save(_plots().race(comparison), args.out, args.dpi)
    return 0


def _run_lessons(args: argparse.Namespace) -> int:
    from .lessons import LessonsError, copy_lessons, launch_jupyterlab, require_jupyterlab

    try:
        result = copy_lessons(args.dir)
        print(result.summary())
        if args.copy_only:
            return 0
        require_jupyterlab()
        print(f"starting JupyterLab in {args.dir} (Ctrl-C to stop it)", flush=True)
        return launch_jupyterlab(args.dir, port=args.port, open_browser=not args.no_browser)
    except LessonsError as exc:
        print(f"{_PROG} lessons: {exc}", file=sys.stderr)
        return 1


def _run_batch(command: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``throttle-lab batch``: check, estimate, simulate or run (the batch package is imported only now)."""
    import asyncio
    import signal

    from ..batch import BatchLimits, ResultsFile, estimate_batch, read_requests, run_batch, simulate_batch

    planning = args.dry_run or args.simulate
    if not planning and args.out is None:
        command.error("--out is required (the results file; re-running with it resumes)")
    if not planning and args.base_url is None:
        command.error("--base-url is required (e.g. http://127.0.0.1:8000 or https://api.openai.com/v1)")
    if args.out is not None and not args.out.parent.is_dir():
        command.error(f"--out: directory {str(args.out.parent)!r} does not exist")
    try:
        batch = read_requests(args.input)
        limits = BatchLimits(
            rpm=args.rpm,
            tpm=args.tpm,
            itpm=args.itpm,
            otpm=args.otpm,
            max_concurrent=args.max_concurrent,
            burst_seconds=args.burst_seconds,
        )
    except OSError as exc:
        command.error(f"cannot read {str(args.input)!r}: {exc.strerror or exc}")
    except ValueError as exc:
        command.error(str(exc))
    for problem in batch.problems:
        print(f"{args.input}: {problem}", file=sys.stderr)

    if args.dry_run:
        done: frozenset[str] = frozenset()
        if args.out is not None and args.out.exists():
            with ResultsFile.open(args.out) as results:  # read only what is there (and repair a torn end)
                done = frozenset(results.done)
        estimate = estimate_batch(batch, limits, default_max_tokens=args.default_max_tokens, skip=done)
        if done:
            print(f"{len(done & {r.custom_id for r in batch.requests})} already in {args.out}: skipped")
        print(estimate.report())
        return 1 if estimate.too_large or estimate.invalid else 0
    if args.simulate:
        if not (limits.rpm or limits.tpm or limits.itpm or limits.otpm):
            command.error("--simulate needs limits (--rpm/--tpm/...): nothing is sent to learn them")
        summary = simulate_batch(
            batch,
            limits=limits,
            seed=args.seed or 0,
            max_attempts=args.max_attempts,
            default_max_tokens=args.default_max_tokens,
        )
        print(f"simulated on virtual time against the mock server with the same limits: {summary.line()}")
        print(f"predicted makespan: {summary.elapsed:.1f} s")
        return 1 if summary.invalid or summary.failed else 0

    async def go() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def interrupted() -> None:
            # A real signal, handled on the loop (add_signal_handler needs the main thread): stop admitting
            # new requests, let run_batch wait --grace seconds for those in flight and write them.
            if not stop.is_set():
                print(
                    f"\ninterrupted: sending nothing new; waiting up to {args.grace:g} s for requests in "
                    "flight (their results are kept)",
                    file=sys.stderr,
                    flush=True,
                )
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, interrupted)
        try:
            return await run_batch(
                batch,
                args.out,
                base_url=args.base_url,
                api_key=args.api_key,
                rpm=limits.rpm,
                tpm=limits.tpm,
                itpm=limits.itpm,
                otpm=limits.otpm,
                max_concurrent=limits.max_concurrent,
                burst_seconds=limits.burst_seconds,
                learn_limits=not args.no_learn_limits,
                max_attempts=args.max_attempts,
                timeout=args.timeout,
                grace=args.grace,
                default_max_tokens=args.default_max_tokens,
                stop=stop,
                progress=not args.no_progress,
                write_exhausted=args.write_exhausted,
                durable=args.durable,
                seed=args.seed,
            )
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    try:
        summary = asyncio.run(go())
    except (RuntimeError, ValueError) as exc:  # another run holds --out; an option run_batch refuses
        command.error(str(exc))
    except OSError as exc:
        command.error(f"cannot write {str(args.out)!r}: {exc.strerror or exc}")
    for note in summary.notes:
        print(f"note: {note}", file=sys.stderr)
    if summary.retry_later_ids:
        shown = ", ".join(summary.retry_later_ids[:5]) + (" ..." if len(summary.retry_later_ids) > 5 else "")
        print(f"not written, sent again by the next run: {shown}", file=sys.stderr)
    print(summary.line(), flush=True)
    return int(summary.exit_code)


def _check_paths(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    out: Path | None = getattr(args, "out", None)
    if out is not None:
        if out.suffix.lower() not in _IMAGE_SUFFIXES:
            parser.error(f"--out must end in {', '.join(_IMAGE_SUFFIXES)}, got {str(out)!r}")
        if not out.parent.is_dir():
            parser.error(f"--out: directory {str(out.parent)!r} does not exist")
    trace_path: Path | None = getattr(args, "trace", None)
    if trace_path is not None:
        if trace_path.suffix.lower() not in (".csv", ".json"):
            parser.error(f"--trace must end in .csv or .json, got {str(trace_path)!r}")
        if not trace_path.parent.is_dir():
            parser.error(f"--trace: directory {str(trace_path.parent)!r} does not exist")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``throttle-lab`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Bad arguments -- unknown options, malformed values, or settings the library refuses, such as a
    server bucket smaller than one request -- print a usage message and exit with status 2.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command: argparse.ArgumentParser = args.parser  # the sub-command's parser, for its error messages

    if args.command == "serve":
        from mock_server.cli import config_from_args
        from mock_server.cli import main as serve

        # Check the options here, so a bad one is reported under this program's name, then hand over.
        server_args = argparse.Namespace(
            **{k: v for k, v in vars(args).items() if k not in ("command", "parser")}
        )
        try:
            config_from_args(server_args)
        except ValueError as exc:
            command.error(str(exc))
        return serve(argv[argv.index("serve") + 1 :])
    if args.command == "lessons":
        return _run_lessons(args)
    if args.command == "batch":
        return _run_batch(command, args)

    _check_paths(command, args)
    try:
        if args.command == "simulate":
            return _run_simulate(args)
        return _run_compare(args)
    except ValueError as exc:  # the library's validation: a workload, server or limit it refuses
        command.error(str(exc))
    except VirtualTimeError as exc:
        print(f"{_PROG}: the simulation got stuck: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
