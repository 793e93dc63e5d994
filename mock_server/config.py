"""How the mock provider behaves: one frozen :class:`ServerConfig`.

Everything the server does — its limits, its latency, the faults it injects — is decided by this one
object, so an experiment is reproducible from its config alone (and ``seed`` makes the randomness
repeatable too). ``None`` in a limit field means *unlimited*.

Per-minute limits and the enforcement window
--------------------------------------------
Providers advertise limits per minute but refill them continuously, and often enforce them over a
shorter period. ``window`` says over how many seconds the per-minute limit is enforced: each limit
becomes a bucket of ``capacity = limit * window / 60`` that refills at ``limit / 60`` per second.

=====================  ===========  ====================================================
rpm=60, window=60      bucket 60    a full minute's worth may arrive in one burst
rpm=180, window=1      bucket 3     at most 3 at once, then one every 1/3 s
=====================  ===========  ====================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .validation import check_int, check_limit, check_number

__all__ = ["DEFAULT_MODELS", "PRESETS", "ScheduleEntry", "ServerConfig", "TokenCharge"]

TokenCharge = Literal["prompt+max_tokens", "prompt"]
"""What a request is charged against TPM when it is admitted (see :attr:`ServerConfig.token_charge`)."""

ScheduleEntry = tuple[float, "int | None", "int | None"]
"""``(at_seconds, rpm, tpm)``: from ``epoch + at_seconds`` on, the limits are ``rpm`` and ``tpm``."""

DEFAULT_MODELS: tuple[str, ...] = (
    # Chat models: ids from the ``ModelIdsShared`` enum of OpenAI's OpenAPI spec (2026-08).
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "gpt-5.2",
    "gpt-5.1",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o4-mini",
    "o3",
    "o3-mini",
    "o1",
    "o1-mini",
    "gpt-4-turbo",
    "gpt-3.5-turbo",
    # Embedding models: the enum of ``CreateEmbeddingRequest.model``.
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    # Claude models (the Anthropic Messages dialect): real ids taken from the ``Model`` literal type of
    # the installed anthropic SDK 2.15 (``anthropic/types/model.py``, read 2026-12).
    "claude-fable-5-2",
    "claude-mythos-5-2",
    "claude-haiku-5-5",
    "claude-sonnet-5-5",
    "claude-fable-5-1",
    "claude-opus-5-5",
    "claude-mythos-5-1",
    "claude-sonnet-5",
    "claude-fable-5",
    "claude-mythos-5",
    "claude-opus-5",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-mythos-preview",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-haiku-4-5-20251001",
    "claude-opus-4-5",
    "claude-opus-4-5-20251101",
    # The mock's own.
    "mock-llm",
)
"""Model ids served unless ``models`` says otherwise: common names, so unchanged client code just works."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """The complete behaviour of one mock provider.

    Limits
        ``rpm`` / ``tpm``: requests and tokens per minute (``None`` = unlimited). ``window``: seconds over
        which they are enforced (bucket capacity ``limit * window / 60``, refill ``limit / 60`` per s).
        ``max_concurrent``: requests in flight at once (per key when ``per_key``), beyond which the server
        answers 429. ``per_key``: a separate set of buckets for each ``Authorization`` header value.
        ``token_charge``: ``"prompt+max_tokens"`` (what OpenAI does) or ``"prompt"``; what is taken from the
        tokens bucket at admission. ``default_max_tokens``: used when a request omits ``max_tokens``.
        ``count_rejected`` (off by default): a request answered 429 still takes one request from the
        requests bucket, which may then go into debt down to ``-capacity``; this models providers that
        count unsuccessful requests, and shows why hammering a limited endpoint keeps you limited.
        ``flag_too_large`` (off by default, a mock-only aid): a request larger than the whole tokens budget
        gets code ``request_too_large`` and ``x-should-retry: false`` (the official SDKs then do not
        retry it). Off, the answer is OpenAI's own: 429, type ``tokens``, code ``rate_limit_exceeded``,
        "Request too large for ... on tokens per min (TPM): Limit ..., Requested ...", and nothing in it
        says that waiting will not help.
        ``quota_tokens``: a prepaid balance of tokens shared by all keys; a request whose charge no
        longer fits gets 429 ``insufficient_quota``.
        ``itpm`` / ``otpm``: input and output tokens per minute, Anthropic's two token limits, enforced on
        ``POST /v1/messages`` only (``tpm`` is the OpenAI routes'; ``rpm`` counts requests of both
        dialects, one account). Same ``window`` semantics. A message is charged its input tokens against
        ITPM and its ``max_tokens`` against OTPM at admission. ``output_reconcile`` (**on** by default,
        because Anthropic documents it: "OTPM rate limits are estimated based on max_tokens at the
        beginning of each request and adjusted at the end") gives back, when the reply ends, the part of
        ``max_tokens`` it did not produce; off, the whole ``max_tokens`` stays charged (a stricter
        provider, and what a client estimating from ``max_tokens`` alone assumes). See
        :mod:`mock_server.anthropic_limits`.
        ``limit_schedule``: ``(at_seconds, rpm, tpm)`` entries applied when the server clock passes
        ``epoch + at_seconds`` (``epoch`` = loop time of lifespan startup or of the first request,
        whichever comes first) — a brownout. Usage in the buckets is kept across a change. The schedule
        changes ``rpm``/``tpm`` only; ``set_limits`` also changes ``itpm``/``otpm``.

    Model and content
        ``models``: ids served (an empty tuple serves any id); an unknown id gets 404 ``model_not_found``.
        ``max_output_tokens`` / ``context_window``: larger requests get a 400, as real models do.
        ``completion_fraction``: a completion is ``uniform(lo, hi) * max_tokens`` tokens long (seeded).
        ``tool_call_rate``: with ``tools`` and ``tool_choice`` ``"auto"`` (the default when tools are
        given), the chance that a reply calls a tool rather than answering in text (seeded; 1.0, the
        default, always calls one unless the conversation ends with a tool result — see
        :mod:`mock_server.routes.chat`).

    Latency (seconds; all seeded)
        ``ttft``: time to first token. ``per_token``: per output token. ``jitter``: relative spread, each
        request's latency is multiplied by ``uniform(1 - jitter, 1 + jitter)``. ``load_slowdown``: extra
        factor per *other* request in flight (``0.05`` → 10 others make it 1.5x slower).

    Faults (probabilities per admitted request, drawn from the seed)
        ``error_rate_500``, ``error_rate_503``, ``overloaded_rate`` (a 503 saying the model is overloaded),
        ``stream_cut_rate`` (a stream stops after some chunks, without ``[DONE]``). On ``/v1/messages`` a
        500 is ``api_error`` and both 503 faults are Anthropic's 529 ``overloaded_error``.

    Keys and headers
        ``api_keys``: the API keys accepted (``Authorization: Bearer <key>``); a request without one of
        them gets 401 ``invalid_api_key`` (see :mod:`mock_server.keys`). Empty (the default): any key or
        none is fine. ``/v1/messages`` takes the key from ``x-api-key`` (or a bearer token) and answers
        401 ``authentication_error``. ``organization``: sent as the ``openai-organization`` header when set.

    Housekeeping
        ``seed``: every random choice derives from ``(seed, arrival number)``. ``max_body_bytes``: larger
        request bodies get 413. ``max_events``: keep only the newest that many event records (``None`` =
        all; set it for long-running servers so memory stays flat).
    """

    rpm: int | None = None
    tpm: int | None = None
    itpm: int | None = None
    otpm: int | None = None
    output_reconcile: bool = True
    window: float = 60.0
    max_concurrent: int | None = None
    per_key: bool = False
    token_charge: TokenCharge = "prompt+max_tokens"
    default_max_tokens: int = 100
    count_rejected: bool = False
    flag_too_large: bool = False
    quota_tokens: int | None = None
    limit_schedule: tuple[ScheduleEntry, ...] = ()
    models: tuple[str, ...] = DEFAULT_MODELS
    max_output_tokens: int = 16_384
    context_window: int = 128_000
    completion_fraction: tuple[float, float] = (0.5, 1.0)
    tool_call_rate: float = 1.0
    ttft: float = 0.2
    per_token: float = 0.01
    jitter: float = 0.1
    load_slowdown: float = 0.0
    error_rate_500: float = 0.0
    error_rate_503: float = 0.0
    overloaded_rate: float = 0.0
    stream_cut_rate: float = 0.0
    seed: int = 0
    max_body_bytes: int = 1_048_576
    max_events: int | None = None
    api_keys: tuple[str, ...] = ()
    organization: str | None = None
    # Not a behaviour knob: a label shown by ``repr``/``stats`` when the config came from a preset.
    preset_name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "itpm", "otpm", "max_concurrent", "quota_tokens", "max_events"):
            check_limit(name, getattr(self, name))
        for name in ("default_max_tokens", "max_output_tokens", "context_window", "max_body_bytes"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("seed", self.seed)
        check_number("window", self.window, above=True)
        for name in ("ttft", "per_token", "load_slowdown"):
            check_number(name, getattr(self, name))
        for name in (
            "jitter",
            "error_rate_500",
            "error_rate_503",
            "overloaded_rate",
            "stream_cut_rate",
            "tool_call_rate",
        ):
            check_number(name, getattr(self, name), maximum=1.0)
        if self.error_rate_500 + self.error_rate_503 + self.overloaded_rate > 1.0:
            raise ValueError("error_rate_500 + error_rate_503 + overloaded_rate must not exceed 1")
        for name in ("per_key", "count_rejected", "flag_too_large", "output_reconcile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.token_charge not in ("prompt+max_tokens", "prompt"):
            raise ValueError(
                f"token_charge must be 'prompt+max_tokens' or 'prompt', got {self.token_charge!r}"
            )
        if self.default_max_tokens > self.max_output_tokens:
            raise ValueError("default_max_tokens must not exceed max_output_tokens")
        object.__setattr__(self, "models", _check_models(self.models))
        object.__setattr__(self, "api_keys", _check_keys(self.api_keys))
        if self.organization is not None and not _is_header_text(self.organization):
            raise ValueError(
                f"organization must be None or a non-empty printable ASCII string, got {self.organization!r}"
            )
        object.__setattr__(self, "completion_fraction", _check_fraction(self.completion_fraction))
        object.__setattr__(self, "limit_schedule", _check_schedule(self.limit_schedule))
        _check_burst("rpm", self.rpm, self.window)
        for _, rpm, _ in self.limit_schedule:
            _check_burst("limit_schedule rpm", rpm, self.window)

    # -- derived values -------------------------------------------------------------------------------

    def capacity(self, per_minute: int) -> float:
        """Bucket size for a per-minute limit under this config's ``window``."""
        return per_minute * self.window / 60.0

    # -- presets --------------------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ServerConfig:
        """A named starting point, optionally with some fields overridden.

        >>> ServerConfig.preset("openai-tier1").rpm
        500
        >>> ServerConfig.preset("brownout", seed=7).seed
        7

        See :data:`PRESETS` for the names and what each one models.
        """
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}") from None
        return dataclasses.replace(base, preset_name=name, **overrides)

    @classmethod
    def preset_names(cls) -> tuple[str, ...]:
        """The names :meth:`preset` accepts."""
        return tuple(PRESETS)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-friendly data (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "limit_schedule":
                value = [list(entry) for entry in value]
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


# -- rules beyond one number (one number alone: mock_server.validation) ---------------------------------


def _check_burst(name: str, rpm: object, window: float) -> None:
    # A requests bucket smaller than one request would refuse everything, forever.
    if isinstance(rpm, int) and rpm * window / 60.0 < 1.0 - 1e-9:
        raise ValueError(
            f"{name}={rpm} with window={window:g}s gives a bucket of {rpm * window / 60.0:g} requests; "
            "it must hold at least one (raise the limit or lengthen the window)"
        )


def _check_models(models: object) -> tuple[str, ...]:
    if isinstance(models, str) or not isinstance(models, Iterable):
        raise ValueError(f"models must be a tuple of model ids, got {models!r}")
    result = tuple(models)
    if not all(isinstance(m, str) and m for m in result):
        raise ValueError(f"models must contain non-empty strings, got {result!r}")
    return result


def _is_header_text(value: object) -> bool:
    # What may go into an HTTP header value (or a bearer token) unchanged: printable ASCII, no spaces.
    return (
        isinstance(value, str)
        and bool(value)
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def _check_keys(keys: object) -> tuple[str, ...]:
    if isinstance(keys, str) or not isinstance(keys, Iterable):
        raise ValueError(f"api_keys must be a tuple of API keys, got {keys!r}")
    result = tuple(keys)
    if not all(_is_header_text(k) for k in result):
        raise ValueError(
            f"api_keys must contain non-empty printable ASCII strings without spaces, got {result!r}"
        )
    return result


def _check_fraction(value: object) -> tuple[float, float]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"completion_fraction must be a pair (lo, hi), got {value!r}")
    lo, hi = value
    check_number("completion_fraction", lo, maximum=1.0)
    check_number("completion_fraction", hi, maximum=1.0)
    if not 0 < lo <= hi:
        raise ValueError(f"completion_fraction must satisfy 0 < lo <= hi <= 1, got {value!r}")
    return (float(lo), float(hi))


def _check_schedule(value: object) -> tuple[ScheduleEntry, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | Mapping):
        raise ValueError(f"limit_schedule must be a tuple of (at_seconds, rpm, tpm), got {value!r}")
    entries: list[ScheduleEntry] = []
    for entry in value:
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise ValueError(f"limit_schedule entries must be (at_seconds, rpm, tpm), got {entry!r}")
        at, rpm, tpm = entry
        check_number("limit_schedule at_seconds", at)
        check_limit("limit_schedule rpm", rpm)
        check_limit("limit_schedule tpm", tpm)
        entries.append((float(at), rpm, tpm))
    # Sorted so the server can walk it with one index; stable, so equal times apply in the given order.
    entries.sort(key=lambda e: e[0])
    return tuple(entries)


PRESETS: Mapping[str, ServerConfig] = {
    # Nothing limited; the default latency model. A blank page.
    "default": ServerConfig(),
    # The published tier-1 limits of gpt-4o-mini at the time of writing (500 RPM, 200,000 TPM),
    # refilled continuously over the minute. Check your own account's limits page: they change.
    "openai-tier1": ServerConfig(rpm=500, tpm=200_000),
    # A tight provider for lessons: one request per second on average, bursts of 60 allowed.
    "lesson": ServerConfig(rpm=60, tpm=20_000),
    # Per-minute limits enforced per second: 180 RPM becomes a bucket of 3 refilling 3/s, so a burst
    # that a per-minute bucket would absorb is refused. (The CLI example in the README.)
    "short-window": ServerConfig(rpm=180, tpm=90_000, window=1.0),
    # A brownout: 120 RPM / 60,000 TPM; 30 s in, limits drop to a quarter for a minute, then recover.
    "brownout": ServerConfig(rpm=120, tpm=60_000, limit_schedule=((30.0, 30, 15_000), (90.0, 120, 60_000))),
    # An unreliable provider: 5 % 500s, 3 % 503s, 2 % "overloaded", 5 % of streams cut mid-way.
    "flaky": ServerConfig(
        rpm=120,
        tpm=60_000,
        error_rate_500=0.05,
        error_rate_503=0.03,
        overloaded_rate=0.02,
        stream_cut_rate=0.05,
    ),
    # Anthropic's published tiers for Claude Sonnet 4.x (docs.anthropic.com/en/api/rate-limits, as
    # published in 2025): requests, input tokens and output tokens per minute. They change, and differ
    # per model family: check your own console's limits page.
    "anthropic-tier-1": ServerConfig(rpm=50, itpm=30_000, otpm=8_000),
    "anthropic-tier-2": ServerConfig(rpm=1_000, itpm=450_000, otpm=90_000),
    "anthropic-tier-3": ServerConfig(rpm=2_000, itpm=800_000, otpm=160_000),
    "anthropic-tier-4": ServerConfig(rpm=4_000, itpm=2_000_000, otpm=400_000),
    # No limits and no latency: for benchmarks and tests of raw request handling.
    "instant": ServerConfig(ttft=0.0, per_token=0.0, jitter=0.0),
}
"""Named configs for :meth:`ServerConfig.preset` (and ``--preset`` on the command line)."""
