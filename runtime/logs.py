"""Structured logs for Helix: one pipeline for structlog and the standard library, secrets removed.

Why one pipeline: discord.py logs through the standard library, ``sync/`` through structlog; an
operator reading Railway's log explorer needs both in one format, with the same context (guild,
channel, user id, command, request id) on every line about a command. So structlog hands its
events to the standard library, and a single handler with a ``ProcessorFormatter`` renders
everything: JSON lines (``message`` and ``level``, the keys Railway's structured logs read) when
the stream is not a terminal, readable colour lines when it is.

Why redaction here: a token or an rclone password can reach a log line through an exception text,
a repr, or a library's debug output. The last step before anything is written removes the values
of secret-looking variables and anything shaped like a Discord token, in every field and in
formatted tracebacks. ``redact()`` is the same step for text headed elsewhere (a Discord reply), and
``redact_excerpt()`` for a piece of a longer text, whose cut may have left half a secret.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import urllib.parse
from collections.abc import Mapping
from itertools import groupby
from typing import Any, TextIO

import structlog

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS = ("auto", "json", "console")
REDACTED = "[REDACTED]"

# The variables whose values are secrets. RCLONE_CONFIG_PASS is the key of an encrypted rclone.conf;
# RCLONE_CONFIG_<NAME>_PASS / _PASSWORD2 are (obscured, hence reversible) remote passwords.
_SECRET_NAME = re.compile(
    r"^(RCLONE_CONFIG_PASS|RCLONE_CONFIG_\w+_PASS|\w+_PASSWORD2?|\w+_TOKEN|\w+_SECRET|\w+_KEY)$", re.IGNORECASE
)
# Shorter values are not redacted: replacing every "1" or "true" in every line would destroy the logs
# and protect nothing (no credential that short is worth anything).
_MIN_SECRET_LEN = 4
_NOT_SECRETS = {"true", "false", "none", "null", "yes", "no", "off", "on"}
# A bot token is base64(user id) . base64(timestamp) . HMAC; the lookarounds stop a match inside a
# longer word. Before it, only a letter or a digit ([^\W_]) makes one: "_" and "-" join words in
# names, and in "bot_token_<token>.txt" the token is still whole. Old user tokens ("mfa.") follow a
# second shape.
_DISCORD_TOKEN = re.compile(
    r"(?<![^\W_])(?:[MNO][\w-]{23,27}\.[\w-]{6,7}\.[\w-]{27,}|mfa\.[\w-]{80,})(?![\w-])"
)

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()
_secret_re: re.Pattern[str] | None = None
_handler: logging.Handler | None = None


def _variants(value: str) -> set[str]:
    """The forms a secret takes once rendered: raw, JSON-escaped, repr-escaped, URL-encoded."""
    forms = {value, json.dumps(value)[1:-1], repr(value)[1:-1], urllib.parse.quote(value, safe="")}
    return {f for f in forms if f}


def secret_values(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The values of every secret-named variable in ``env`` (longest first, so overlaps redact fully)."""
    env = os.environ if env is None else env
    found: set[str] = set()
    for name, value in env.items():
        value = (value or "").strip()
        if not _SECRET_NAME.match(name) or len(value) < _MIN_SECRET_LEN or value.lower() in _NOT_SECRETS:
            continue
        found |= _variants(value)
        if value.startswith("Bot "):  # the same token without the prefix people sometimes paste
            found |= _variants(value[4:])
    return tuple(sorted(found, key=len, reverse=True))


def refresh_secrets(env: Mapping[str, str] | None = None) -> None:
    """Re-read secret values from ``env`` (default: ``os.environ``); call after the environment changes."""
    global _secrets, _secret_re
    values = secret_values(env)
    with _lock:
        _secrets = values
        _secret_re = re.compile("|".join(re.escape(v) for v in values)) if values else None


def redact(text: str) -> str:
    """Return ``text`` with every known secret value and every Discord-token-shaped string replaced."""
    if not isinstance(text, str) or not text:
        return text
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    return _DISCORD_TOKEN.sub(REDACTED, text)


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where ``redact`` finds a secret in ``text``: (start, end) pairs in order, overlapping ones merged."""
    pattern = _secret_re
    found = sorted(m.span() for p in (pattern, _DISCORD_TOKEN) if p is not None for m in p.finditer(text))
    spans: list[tuple[int, int]] = []
    for start, end in found:
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def redact_excerpt(excerpt: str, whole: str | None, *, marks: str = "", cut: str = "…") -> str:
    """``excerpt``, a piece of ``whole`` (with ``marks`` added, and ``cut`` where it was cut short;
    ``None`` when nothing was cut), with every character of a secret of ``whole`` replaced.

    ``redact`` alone knows a secret only whole: cut where an excerpt begins or ends, or with a mark
    inside it, the piece shown is no longer one it recognizes, yet may be all of a secret that
    matters (a token's signature). Where something is replaced the marks go too, since one may have
    fallen inside it; an excerpt not found in ``whole`` is replaced entirely."""
    body, head, tail = excerpt.translate({ord(m): None for m in marks}), "", ""
    whole = body if whole is None else whole
    spans = secret_spans(whole)
    if not spans:
        return redact(excerpt)
    start = whole.find(body)
    if start < 0 and cut:
        head = cut if body.startswith(cut) else ""
        tail = cut if body.endswith(cut) and len(body) >= len(head) + len(cut) else ""
        body = body[len(head):len(body) - len(tail)]
        start = whole.find(body)
    if start < 0:
        return REDACTED
    hidden = [any(s <= start + i < e for s, e in spans) for i in range(len(body))]
    if not any(hidden):
        return excerpt
    runs = groupby(zip(body, hidden, strict=True), key=lambda pair: pair[1])
    return head + "".join(REDACTED if gone else "".join(c for c, _ in run) for gone, run in runs) + tail


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {_redact_value(k): _redact_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v) for v in value]
    if type(value) is tuple:  # not named tuples: rebuilding those positionally would break them
        return tuple(_redact_value(v) for v in value)
    if isinstance(value, set | frozenset):
        return type(value)(_redact_value(v) for v in value)
    return value


def redact_event(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redact every string field, nested containers included."""
    return {key: _redact_value(value) for key, value in event_dict.items()}


def redact_rendered(_logger: Any, _name: str, rendered: Any) -> Any:
    """structlog processor placed after the renderer: catches reprs and console-rendered tracebacks."""
    if isinstance(rendered, str):
        return redact(rendered)
    if isinstance(rendered, bytes):
        return redact(rendered.decode("utf-8", "replace")).encode("utf-8")
    return rendered


_RAILWAY_LEVEL = {"warning": "warn", "critical": "error", "exception": "error", "notset": "debug"}


def _railway_fields(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Railway's structured logs read ``message`` and a level among debug/info/warn/error.

    The usual keys go first so a raw line (``railway logs``) reads left to right.
    """
    level = str(event_dict.pop("level", "info")).lower()
    head = {
        "timestamp": event_dict.pop("timestamp", None),
        "level": _RAILWAY_LEVEL.get(level, level),
        "logger": event_dict.pop("logger", None),
        "message": event_dict.pop("event", None),
    }
    return {**{k: v for k, v in head.items() if v is not None}, **event_dict}


def check_env(env: Mapping[str, str] | None = None) -> list[str]:
    """Problems with LOG_LEVEL / LOG_FORMAT, one sentence each (the preflight reports them)."""
    env = os.environ if env is None else env
    problems = []
    level = env.get("LOG_LEVEL", "").strip()
    if level and level.upper() not in LEVELS:
        problems.append(f"LOG_LEVEL is {level!r}: set it to one of {', '.join(LEVELS)} (or unset it for INFO).")
    fmt = env.get("LOG_FORMAT", "").strip()
    if fmt and fmt.lower() not in FORMATS:
        problems.append(f"LOG_FORMAT is {fmt!r}: set it to json, console or auto (or unset it for auto).")
    return problems


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _shared_processors() -> list[Any]:
    """What every event gets, whether it started in structlog or in the standard library."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderers(fmt: str, colors: bool) -> list[Any]:
    if fmt == "json":
        return [
            structlog.processors.format_exc_info,  # the traceback becomes a string field, then is redacted
            redact_event,
            _railway_fields,
            structlog.processors.JSONRenderer(default=repr),
            redact_rendered,
        ]
    return [
        redact_event,
        structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback),
        redact_rendered,
    ]


def configure(
    *,
    level: str | None = None,
    fmt: str | None = None,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Route structlog and the standard library through one redacting handler on ``stream``.

    ``level``/``fmt`` default to LOG_LEVEL (INFO) and LOG_FORMAT (auto: console on a terminal,
    JSON lines otherwise) from ``env`` (default ``os.environ``). Secret values are read from
    ``env`` now; call ``refresh_secrets()`` if they change later. Safe to call again: the previous
    Helix handler is replaced, other handlers are left alone. A bad LOG_LEVEL or LOG_FORMAT does
    not stop the bot: the default is used and a warning says so (the preflight reports it too).
    """
    global _handler
    env = os.environ if env is None else env
    stream = sys.stdout if stream is None else stream
    refresh_secrets(env)
    raw_level = level if level is not None else env.get("LOG_LEVEL", "")
    raw_fmt = fmt if fmt is not None else env.get("LOG_FORMAT", "")
    complaints = check_env({"LOG_LEVEL": raw_level, "LOG_FORMAT": raw_fmt})
    level_name = raw_level.strip().upper() or "INFO"
    if level_name not in LEVELS:
        level_name = "INFO"
    fmt_name = raw_fmt.strip().lower() or "auto"
    if fmt_name not in FORMATS:
        fmt_name = "auto"
    tty = _is_tty(stream)
    if fmt_name == "auto":
        fmt_name = "console" if tty else "json"

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_renderers(fmt_name, tty)],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.set_name("helix")

    root = logging.getLogger()
    with _lock:
        if _handler is not None:
            root.removeHandler(_handler)
        root.addHandler(handler)
        _handler = handler
    root.setLevel(level_name)
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: configure() may run again (tests, a reload) and every logger must follow it.
        cache_logger_on_first_use=False,
    )
    for complaint in complaints:
        structlog.get_logger("helix.logs").warning("log_settings_ignored", problem=complaint)

