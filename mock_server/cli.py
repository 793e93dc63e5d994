"""Command line: serve the mock provider over real HTTP with uvicorn.

    python -m mock_server --port 8000 --rpm 180 --tpm 90000 --window 1 --seed 0

Every :class:`~mock_server.config.ServerConfig` field has an option. Options left out take their value
from ``--preset`` (default: ``default``), so ``--preset brownout --seed 3`` changes only the seed.

API keys come from ``--api-key KEY`` (repeatable) or, when no ``--api-key`` is given, from the environment
variable ``MOCK_SERVER_API_KEYS`` (comma-separated), so keys need not appear in a process listing.
``--keep-alive SECONDS`` is how long uvicorn keeps an idle connection open (its ``timeout_keep_alive``).
:func:`build_parser` and :func:`main` are public so another command line can embed this one.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .app import create_app
from .config import PRESETS, ServerConfig
from .validation import parse_int, parse_limit, parse_number

__all__ = [
    "API_KEYS_ENV",
    "build_parser",
    "config_from_args",
    "limit_arg",
    "main",
    "positive_int_arg",
    "schedule_arg",
]

API_KEYS_ENV = "MOCK_SERVER_API_KEYS"
"""The environment variable read for API keys (comma-separated) when no ``--api-key`` is given."""

_CLI_MAX_EVENTS = 10_000  # a long-running server keeps only recent events, so its memory stays flat
_DEFAULTS = ServerConfig()

_T = TypeVar("_T")


def _argument(parse: Callable[[str], _T], text: str) -> _T:
    # argparse shows an ArgumentTypeError's message after "argument --rpm:"; a plain ValueError would
    # become the vaguer "invalid <type> value". The rules and their wording are mock_server.validation's.
    try:
        return parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def limit_arg(text: str) -> int | None:
    """A positive integer, or ``none``/``unlimited``/``inf`` for no limit (an argparse ``type``)."""
    return _argument(parse_limit, text)


def positive_int_arg(text: str) -> int:
    """A positive integer (an argparse ``type``)."""
    return _argument(functools.partial(parse_int, minimum=1), text)


def _int(text: str) -> int:
    return _argument(parse_int, text)


def _port(text: str) -> int:
    return _argument(functools.partial(parse_int, minimum=0, maximum=65535), text)


def _number(
    *, minimum: float = 0.0, maximum: float | None = None, above: bool = False
) -> Callable[[str], float]:
    """An argparse ``type`` for a finite number within the bounds (see :func:`parse_number`)."""
    parse = functools.partial(parse_number, minimum=minimum, maximum=maximum, above=above)

    def number(text: str) -> float:
        return _argument(parse, text)

    return number


def schedule_arg(text: str) -> tuple[float, int | None, int | None]:
    """``AT:RPM:TPM`` (an argparse ``type`` for ``--schedule``): seconds after start, then two limits."""
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"expected AT:RPM:TPM (e.g. 30:60:20000 or 30:none:5000), got {text!r}"
        )
    return (_number()(parts[0]), limit_arg(parts[1]), limit_arg(parts[2]))


def _fraction(text: str) -> tuple[float, float]:
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LO:HI (e.g. 0.5:1), got {text!r}")
    share = _number(maximum=1.0, above=True)
    return (share(parts[0]), share(parts[1]))


def _models(text: str) -> tuple[str, ...]:
    if text.strip() == "*":
        return ()
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    if not models:
        raise argparse.ArgumentTypeError("expected a comma-separated list of model ids, or '*' for any")
    return models


def build_parser(prog: str | None = "python -m mock_server") -> argparse.ArgumentParser:
    """The argument parser: server options, then one option per :class:`ServerConfig` field."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A mock LLM provider that rate-limits like the real ones, OpenAI's and Anthropic's. "
        "Serves POST /v1/chat/completions (JSON and SSE streaming), POST /v1/responses, POST /v1/embeddings, "
        "POST /v1/messages and /v1/messages/count_tokens (Anthropic), GET /v1/models, "
        "GET /health, GET /stats, GET /events.",
        epilog="Limits are per minute, refilled continuously; --window sets the period they are "
        "enforced over (--rpm 180 --window 1: bursts of 3, refilled 3/s). Presets: "
        + ", ".join(PRESETS)
        + ". Options you give override the preset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve = parser.add_argument_group("serving")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    serve.add_argument("--port", type=_port, default=8000, help="TCP port to listen on")
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn log level",
    )
    serve.add_argument("--access-log", action="store_true", help="log every request (slows the server down)")
    serve.add_argument(
        "--keep-alive",
        type=positive_int_arg,
        default=5,
        metavar="SECONDS",
        help="close a keep-alive connection idle this long (uvicorn's timeout_keep_alive)",
    )
    serve.add_argument(
        "--print-config",
        action="store_true",
        help="print the resulting config as JSON and exit without serving",
    )

    # Config options default to SUPPRESS: only what the user typed overrides the preset.
    s = argparse.SUPPRESS
    cfg = parser.add_argument_group("limits (per minute; 'none' = unlimited)")
    cfg.add_argument(
        "--preset", choices=list(PRESETS), default=s, help="start from a named config (default: default)"
    )
    cfg.add_argument(
        "--rpm", type=limit_arg, default=s, help=f"requests per minute (default: {_DEFAULTS.rpm})"
    )
    cfg.add_argument(
        "--tpm",
        type=limit_arg,
        default=s,
        help=f"tokens per minute, the OpenAI routes' (default: {_DEFAULTS.tpm})",
    )
    cfg.add_argument(
        "--itpm",
        type=limit_arg,
        default=s,
        help=f"input tokens per minute, Anthropic's /v1/messages (default: {_DEFAULTS.itpm})",
    )
    cfg.add_argument(
        "--otpm",
        type=limit_arg,
        default=s,
        help="output tokens per minute, Anthropic's /v1/messages; charged max_tokens at admission "
        f"(default: {_DEFAULTS.otpm})",
    )
    cfg.add_argument(
        "--output-reconcile",
        action=argparse.BooleanOptionalAction,
        default=s,
        help="give back the unused part of max_tokens to the OTPM budget when a reply ends, as Anthropic "
        "documents (default: on)",
    )
    cfg.add_argument(
        "--window",
        type=_number(above=True),
        default=s,
        help=f"seconds over which per-minute limits are enforced; bucket = limit*window/60 "
        f"(default: {_DEFAULTS.window:g})",
    )
    cfg.add_argument(
        "--max-concurrent",
        type=limit_arg,
        default=s,
        help=f"requests in flight at once before 429 (default: {_DEFAULTS.max_concurrent})",
    )
    cfg.add_argument(
        "--per-key",
        action=argparse.BooleanOptionalAction,
        default=s,
        help="separate limits for each Authorization header value (default: off)",
    )
    cfg.add_argument(
        "--token-charge",
        choices=["prompt+max_tokens", "prompt"],
        default=s,
        help=f"what a request is charged against TPM (default: {_DEFAULTS.token_charge})",
    )
    cfg.add_argument(
        "--default-max-tokens",
        type=positive_int_arg,
        default=s,
        help=f"max_tokens assumed when a request omits it (default: {_DEFAULTS.default_max_tokens})",
    )
    cfg.add_argument(
        "--count-rejected",
        action=argparse.BooleanOptionalAction,
        default=s,
        help="a 429'd request still uses one request of the RPM budget (default: off)",
    )
    cfg.add_argument(
        "--flag-too-large",
        action=argparse.BooleanOptionalAction,
        default=s,
        help="mock-only: answer a request too large for the TPM budget with code request_too_large and "
        "x-should-retry: false (default: off, OpenAI's own rate_limit_exceeded)",
    )
    cfg.add_argument(
        "--quota-tokens",
        type=limit_arg,
        default=s,
        help=f"prepaid token balance; then 429 insufficient_quota (default: {_DEFAULTS.quota_tokens})",
    )
    cfg.add_argument(
        "--schedule",
        dest="limit_schedule",
        type=schedule_arg,
        action="append",
        default=s,
        metavar="AT:RPM:TPM",
        help="from AT seconds after start, limits become RPM and TPM (repeatable; a brownout)",
    )

    model = parser.add_argument_group("model")
    model.add_argument(
        "--models",
        type=_models,
        default=s,
        help=f"comma-separated model ids served, '*' = any (default: {','.join(_DEFAULTS.models)})",
    )
    model.add_argument(
        "--completion-fraction",
        type=_fraction,
        default=s,
        metavar="LO:HI",
        help="a completion is uniform(LO, HI) x max_tokens tokens long (default: "
        f"{_DEFAULTS.completion_fraction[0]:g}:{_DEFAULTS.completion_fraction[1]:g})",
    )
    model.add_argument(
        "--tool-call-rate",
        type=_number(maximum=1.0),
        default=s,
        help="with tools and tool_choice auto: chance a reply calls a tool rather than answering in text "
        f"(default: {_DEFAULTS.tool_call_rate:g})",
    )
    model.add_argument(
        "--max-output-tokens",
        type=positive_int_arg,
        default=s,
        help=f"largest max_tokens accepted (default: {_DEFAULTS.max_output_tokens})",
    )
    model.add_argument(
        "--context-window",
        type=positive_int_arg,
        default=s,
        help=f"prompt + max_tokens limit (default: {_DEFAULTS.context_window})",
    )

    lat = parser.add_argument_group("latency (seconds, seeded)")
    lat.add_argument(
        "--ttft", type=_number(), default=s, help=f"time to first token (default: {_DEFAULTS.ttft:g})"
    )
    lat.add_argument(
        "--per-token",
        type=_number(),
        default=s,
        help=f"time per output token (default: {_DEFAULTS.per_token:g})",
    )
    lat.add_argument(
        "--jitter",
        type=_number(maximum=1.0),
        default=s,
        help=f"relative spread: latency x uniform(1-j, 1+j) (default: {_DEFAULTS.jitter:g})",
    )
    lat.add_argument(
        "--load-slowdown",
        type=_number(),
        default=s,
        help=f"extra latency factor per other request in flight (default: {_DEFAULTS.load_slowdown:g})",
    )

    faults = parser.add_argument_group("faults (probability per admitted request)")
    for name, what in (
        ("error-rate-500", "answer 500 server_error"),
        ("error-rate-503", "answer 503 service_unavailable"),
        ("overloaded-rate", "answer 503 overloaded"),
        ("stream-cut-rate", "cut a stream before [DONE]"),
    ):
        faults.add_argument(f"--{name}", type=_number(maximum=1.0), default=s, help=f"{what} (default: 0)")

    keys = parser.add_argument_group("keys and headers")
    keys.add_argument(
        "--api-key",
        dest="api_keys",
        action="append",
        default=s,
        metavar="KEY",
        help=f"accept only this API key (repeatable; default: ${API_KEYS_ENV}, comma-separated; else any)",
    )
    keys.add_argument(
        "--organization",
        default=s,
        help="send this value as the openai-organization header (default: no header)",
    )

    misc = parser.add_argument_group("other")
    misc.add_argument(
        "--seed",
        type=_int,
        default=s,
        help=f"seed for content, latency and faults (default: {_DEFAULTS.seed})",
    )
    misc.add_argument(
        "--max-body-bytes",
        type=positive_int_arg,
        default=s,
        help=f"larger request bodies get 413 (default: {_DEFAULTS.max_body_bytes})",
    )
    misc.add_argument(
        "--max-events",
        type=limit_arg,
        default=s,
        help=f"event records kept in memory, 'none' = all (default: {_CLI_MAX_EVENTS})",
    )
    return parser


def config_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> ServerConfig:
    """The :class:`ServerConfig` an argument namespace describes (``ValueError`` if it is invalid).

    ``environ`` (default: ``os.environ``) supplies :data:`API_KEYS_ENV` when no ``--api-key`` was given.
    """
    serving = {"host", "port", "log_level", "access_log", "print_config", "keep_alive"}
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in serving}
    preset = overrides.pop("preset", "default")
    overrides = {k.replace("-", "_"): v for k, v in overrides.items()}
    if "limit_schedule" in overrides:
        overrides["limit_schedule"] = tuple(overrides["limit_schedule"])
    if "api_keys" in overrides:
        overrides["api_keys"] = tuple(overrides["api_keys"])
    else:
        from_env = (os.environ if environ is None else environ).get(API_KEYS_ENV, "")
        keys = tuple(k.strip() for k in from_env.split(",") if k.strip())
        if keys:
            overrides["api_keys"] = keys
    overrides.setdefault("max_events", _CLI_MAX_EVENTS)
    return ServerConfig.preset(preset, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and serve until interrupted. Returns an exit status.

    Bad options exit with status 2 and a usage message, like any argparse program.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as err:
        parser.error(str(err))
    if args.print_config:
        json.dump(config.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    import uvicorn  # only the real server needs it; the in-process app stays dependency-free

    limits = f"rpm={config.rpm} tpm={config.tpm} window={config.window:g}s"
    if config.itpm is not None or config.otpm is not None:
        limits += f" itpm={config.itpm} otpm={config.otpm}"
    if config.api_keys:
        limits += f" api_keys={len(config.api_keys)}"
    print(
        f"mock_server: {limits} seed={config.seed} on http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(
        create_app(config),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
        lifespan="on",
        timeout_keep_alive=args.keep_alive,
    )
    return 0
