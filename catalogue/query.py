"""What a member typed after ``!find``, turned into a search the catalogue can run safely.

The words become an FTS5 MATCH expression in which every term is a quoted string, so nothing a
member types (``"``, ``*``, ``NEAR(``, ``AND``) is ever read as FTS5 syntax: a hostile query finds
nothing, it never fails. Three operators are read as people mean them, and only these: a trailing
``*`` is a prefix search, a leading ``-`` leaves a word or ``-"a phrase"`` out, and an upper-case
``OR`` between two words accepts either. Filters (``in:``, ``from:``, ``has:``, ``before:``,
``after:``, ``during:``) are pulled out here; which channels the asker may read is decided by the
bot, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta

MAX_TERMS = 32
MAX_TERM_CHARS = 100
MAX_ID = 2**63 - 1  # SQLite's largest integer, and a Discord id's
HAS_KINDS = ("file", "image")
_FILTER = re.compile(r"^(in|from|has|before|after|during):(.*)$", re.IGNORECASE)
_CHANNEL_MENTION = re.compile(r"^<#(\d{1,20})>$")
_USER_MENTION = re.compile(r"^<@!?(\d{1,20})>$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")  # ASCII digits only: "١٢٣".isdigit() is True
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_WORDLIKE = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class QueryError(ValueError):
    """The query cannot be understood; ``str(err)`` is one sentence for the member, with an example.

    The examples are kept apart (the words after the command) so that an answer shows them in the
    form the member typed: ``/find query:…`` for the slash command, not a prefix they did not use."""

    def __init__(self, said: str, *examples: str) -> None:
        super().__init__(said)
        self.said = said
        self.examples = examples

    def sentence(self, command: str = "!find ") -> str:
        """The sentence with its examples typed as ``command`` then the words (``"/find query:"``)."""
        shown = " or ".join(f"`{command}{example}`" for example in self.examples)
        return f"{self.said}: for example {shown}." if shown else f"{self.said}."

    def __str__(self) -> str:
        return self.sentence()


@dataclass(frozen=True)
class SearchQuery:
    """A parsed ``!find``: the words, and the filters that narrow them."""

    terms: tuple[str, ...] = ()
    prefixes: frozenset[int] = frozenset()  # indexes into ``terms`` that end in ``*``
    channel_ids: frozenset[int] = frozenset()
    channel_names: frozenset[str] = frozenset()  # ``in:#general`` typed as text: the bot resolves it
    author_ids: frozenset[int] = frozenset()
    author_names: frozenset[str] = frozenset()
    has: frozenset[str] = frozenset()
    before: date | None = None  # ``during:`` is kept as the day after it and the day before it
    after: date | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)  # what was ignored, to say so
    either: frozenset[int] = frozenset()  # indexes into ``terms`` joined by ``OR`` to the term before
    excluded: tuple[str, ...] = ()  # ``-word``: a message with any of these is left out
    excluded_prefixes: frozenset[int] = frozenset()  # indexes into ``excluded`` that end in ``*``
    dropped: tuple[str, ...] = field(default=(), compare=False)  # emoji, symbols: nothing the index holds

    @property
    def empty(self) -> bool:
        """No words and no filter: nothing to search for."""
        return not (self.terms or self.channel_ids or self.channel_names or self.author_ids
                    or self.author_names or self.has or self.before or self.after)

    def match_expression(self) -> str | None:
        """The FTS5 MATCH text, or None to match on filters alone: every term quoted, ``OR`` groups
        and the whole in parentheses, so FTS5's own operator precedence never decides the meaning."""
        if not self.terms:
            return None
        groups: list[list[str]] = []
        for i, term in enumerate(self.terms):
            quoted = _quoted(term, i in self.prefixes)
            if i in self.either and groups:
                groups[-1].append(quoted)
            else:
                groups.append([quoted])
        wanted = " AND ".join(g[0] if len(g) == 1 else "(" + " OR ".join(g) + ")" for g in groups)
        if not self.excluded:
            return wanted
        unwanted = " OR ".join(_quoted(t, i in self.excluded_prefixes) for i, t in enumerate(self.excluded))
        return f"({wanted}) NOT ({unwanted})"


def parse_query(text: str) -> SearchQuery:
    """Parse ``words "a phrase" -word this OR that in:#channel from:@user has:image before:2026-01-31
    after:2025-12-01 during:2026-01-15``."""
    text = _CONTROL.sub(" ", text)  # FTS5 reads a NUL as the end of its input, mid-string
    terms: list[str] = []
    prefixes: set[int] = set()
    either: set[int] = set()
    excluded: list[str] = []
    excluded_prefixes: set[int] = set()
    channel_ids: set[int] = set()
    channel_names: set[str] = set()
    author_ids: set[int] = set()
    author_names: set[str] = set()
    has: set[str] = set()
    before: date | None = None
    after: date | None = None
    during = False
    notes: list[str] = []
    dropped: list[str] = []
    tokens = _tokens(text)
    joins = {n for n, t in enumerate(tokens) if _is_or(t) and _is_word(tokens, n - 1) and _is_word(tokens, n + 1)}
    for n, (token, quoted, minus) in enumerate(tokens):
        if _is_or((token, quoted, minus)):
            if n not in joins:
                notes.append("`OR` goes between two words, so a lone one was left out")
            continue
        match = None if quoted else _FILTER.match(token)
        if match is not None and minus:
            raise QueryError("`-` leaves out words, not filters", "launch -rocket")
        if match is None:
            word = token.strip()
            if not _WORDLIKE.search(word):
                dropped.append(word)  # punctuation alone matches nothing: drop it instead of searching for it
                continue
            if len(terms) + len(excluded) >= MAX_TERMS:
                notes.append(f"only the first {MAX_TERMS} words were searched")
                break
            prefix = not quoted and word.endswith("*") and len(word.rstrip("*")) > 0
            word = (word.rstrip("*") if prefix else word)[:MAX_TERM_CHARS]
            if minus:
                if prefix:
                    excluded_prefixes.add(len(excluded))
                excluded.append(word)
                continue
            if prefix:
                prefixes.add(len(terms))
            if terms and n - 1 in joins:
                either.add(len(terms))
            terms.append(word)
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key == "in":
            if m := _CHANNEL_MENTION.match(value):
                channel_ids.add(_id(m.group(1), key))
            elif _DIGITS.match(value):
                channel_ids.add(_id(value, key))
            elif value.lstrip("#"):
                channel_names.add(value.lstrip("#").lower()[:MAX_TERM_CHARS])
            else:
                raise QueryError("`in:` needs a channel", "hello in:#general")
        elif key == "from":
            if m := _USER_MENTION.match(value):
                author_ids.add(_id(m.group(1), key))
            elif _DIGITS.match(value):
                author_ids.add(_id(value, key))
            elif value.lstrip("@"):
                author_names.add(value.lstrip("@").lower()[:MAX_TERM_CHARS])
            else:
                raise QueryError("`from:` needs a member", "hello from:@alice")
        elif key == "has":
            kind = value.lower()
            if kind not in HAS_KINDS:
                raise QueryError(f"`has:` takes {' or '.join(HAS_KINDS)}", "has:image")
            has.add(kind)
        else:
            # Each date narrows the range, so they combine as "and" like every other filter.
            day = _day(value, key)
            ends = {"before": (None, day), "after": (day, None),
                    "during": (_shifted(day, -1), _shifted(day, 1))}[key]
            during = during or key == "during"
            if ends[0] is not None:
                after = ends[0] if after is None else max(after, ends[0])
            if ends[1] is not None:
                before = ends[1] if before is None else min(before, ends[1])
    if excluded and not terms:
        raise QueryError("`-word` only leaves words out, so give a word to look for too", "launch -rocket")
    if before and after and (before - after).days <= 1:  # "after" is the days after it: none between
        if during or after < before:
            raise QueryError("Those dates leave no day to search", "during:2026-01-31",
                             "after:2026-01-01 before:2026-02-01")
        raise QueryError("`after:` must be earlier than `before:`", "after:2026-01-01 before:2026-02-01")
    return SearchQuery(tuple(terms), frozenset(prefixes), frozenset(channel_ids), frozenset(channel_names),
                       frozenset(author_ids), frozenset(author_names), frozenset(has), before, after,
                       tuple(dict.fromkeys(notes)), frozenset(either), tuple(excluded), frozenset(excluded_prefixes),
                       tuple(dropped))


def _quoted(term: str, prefix: bool) -> str:
    return '"' + term.replace('"', '""') + '"' + ("*" if prefix else "")


def _is_or(token: tuple[str, bool, bool]) -> bool:
    text, quoted, minus = token
    return text == "OR" and not quoted and not minus


def _is_word(tokens: list[tuple[str, bool, bool]], n: int) -> bool:
    """Whether ``tokens[n]`` becomes a term that must be found (what ``OR`` may stand between)."""
    if not 0 <= n < len(tokens):
        return False
    text, quoted, minus = tokens[n]
    if minus or _is_or(tokens[n]) or (not quoted and _FILTER.match(text)):
        return False
    return bool(_WORDLIKE.search(text))


def _id(value: str, key: str) -> int:
    """A Discord id as SQLite can hold it: a bigger number is no id, and would not fit its integers."""
    number = int(value)
    if not 1 <= number <= MAX_ID:
        what, example = ("member", "from:@alice") if key == "from" else ("channel", "in:#general")
        raise QueryError(f"`{key}:` got a number that is no Discord id: name the {what} instead", f"hello {example}")
    return number


def _day(value: str, key: str) -> date:
    m = _DATE.match(value)
    try:
        if m is None:
            raise ValueError
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise QueryError(f"`{key}:` takes a date as YYYY-MM-DD", f"{key}:2026-01-31") from None


def _shifted(day: date, days: int) -> date | None:
    """The day before or after ``day``, or None past the calendar's ends (no day is before 0001-01-01)."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return None


def _tokens(text: str) -> list[tuple[str, bool, bool]]:
    """Words and ``"quoted phrases"`` (an unclosed quote runs to the end), each with whether it was
    quoted and whether a ``-`` before it leaves it out."""
    out: list[tuple[str, bool, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        minus = text[i] == "-"
        while i < n and text[i] == "-":
            i += 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            end = n if end == -1 else end
            phrase = " ".join(text[i + 1:end].split())
            if phrase:
                out.append((phrase, True, minus))
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append((text[i:j], False, minus))
            i = j
    return out
