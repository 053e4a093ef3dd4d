"""What a member typed after ``!find``, turned into a search the catalogue can run safely.

The words become an FTS5 MATCH expression in which every term is a quoted string, so nothing a
member types (``"``, ``*``, ``NEAR(``, ``-``, ``AND``) is ever read as FTS5 syntax: a hostile
query finds nothing, it never fails. A trailing ``*`` on a word is kept as a prefix search,
which is what people mean by it. Filters (``in:``, ``from:``, ``has:``, ``before:``, ``after:``)
are pulled out here; which channels the asker may read is decided by the bot, not here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

MAX_TERMS = 32
MAX_TERM_CHARS = 100
HAS_KINDS = ("file", "image")
_FILTER = re.compile(r"^(in|from|has|before|after):(.*)$", re.IGNORECASE)
_CHANNEL_MENTION = re.compile(r"^<#(\d{1,20})>$")
_USER_MENTION = re.compile(r"^<@!?(\d{1,20})>$")
_DIGITS = re.compile(r"^[0-9]{1,20}$")  # ASCII digits only: "١٢٣".isdigit() is True
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_WORDLIKE = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class QueryError(ValueError):
    """The query cannot be understood; ``str(err)`` is one sentence for the member, with an example."""


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
    before: date | None = None
    after: date | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)  # what was ignored, to say so

    @property
    def empty(self) -> bool:
        """No words and no filter: nothing to search for."""
        return not (self.terms or self.channel_ids or self.channel_names or self.author_ids
                    or self.author_names or self.has or self.before or self.after)

    def match_expression(self) -> str | None:
        """The FTS5 MATCH text (every term quoted, terms ANDed), or None to match on filters alone."""
        if not self.terms:
            return None
        parts = []
        for i, term in enumerate(self.terms):
            quoted = '"' + term.replace('"', '""') + '"'
            parts.append(quoted + ("*" if i in self.prefixes else ""))
        return " AND ".join(parts)


def parse_query(text: str) -> SearchQuery:
    """Parse ``words "a phrase" in:#channel from:@user has:image before:2026-01-31 after:2025-12-01``."""
    text = _CONTROL.sub(" ", text)  # FTS5 reads a NUL as the end of its input, mid-string
    terms: list[str] = []
    prefixes: set[int] = set()
    channel_ids: set[int] = set()
    channel_names: set[str] = set()
    author_ids: set[int] = set()
    author_names: set[str] = set()
    has: set[str] = set()
    before = after = None
    notes: list[str] = []
    for token, quoted in _tokens(text):
        match = None if quoted else _FILTER.match(token)
        if match is None:
            word = token.strip()
            if not _WORDLIKE.search(word):
                continue  # punctuation alone matches nothing: drop it instead of searching for it
            if len(terms) >= MAX_TERMS:
                notes.append(f"only the first {MAX_TERMS} words were searched")
                break
            prefix = not quoted and word.endswith("*") and len(word.rstrip("*")) > 0
            word = word.rstrip("*") if prefix else word
            if prefix:
                prefixes.add(len(terms))
            terms.append(word[:MAX_TERM_CHARS])
            continue
        key, value = match.group(1).lower(), match.group(2).strip()
        if key == "in":
            if m := _CHANNEL_MENTION.match(value):
                channel_ids.add(int(m.group(1)))
            elif _DIGITS.match(value):
                channel_ids.add(int(value))
            elif value.lstrip("#"):
                channel_names.add(value.lstrip("#").lower()[:MAX_TERM_CHARS])
            else:
                raise QueryError("`in:` needs a channel: for example `!find hello in:#general`.")
        elif key == "from":
            if m := _USER_MENTION.match(value):
                author_ids.add(int(m.group(1)))
            elif _DIGITS.match(value):
                author_ids.add(int(value))
            elif value.lstrip("@"):
                author_names.add(value.lstrip("@").lower()[:MAX_TERM_CHARS])
            else:
                raise QueryError("`from:` needs a member: for example `!find hello from:@alice`.")
        elif key == "has":
            kind = value.lower()
            if kind not in HAS_KINDS:
                raise QueryError(f"`has:` takes {' or '.join(HAS_KINDS)}: for example `!find has:image`.")
            has.add(kind)
        else:
            day = _day(value, key)
            if key == "before":
                before = day
            else:
                after = day
    if before and after and after >= before:
        raise QueryError("`after:` must be earlier than `before:`: for example "
                         "`!find after:2026-01-01 before:2026-02-01`.")
    return SearchQuery(tuple(terms), frozenset(prefixes), frozenset(channel_ids), frozenset(channel_names),
                       frozenset(author_ids), frozenset(author_names), frozenset(has), before, after,
                       tuple(dict.fromkeys(notes)))


def _day(value: str, key: str) -> date:
    m = _DATE.match(value)
    try:
        if m is None:
            raise ValueError
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise QueryError(f"`{key}:` takes a date as YYYY-MM-DD: for example `!find {key}:2026-01-31`.") from None


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Words and ``"quoted phrases"`` (an unclosed quote runs to the end), each with whether it was quoted."""
    out: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
        elif text[i] == '"':
            end = text.find('"', i + 1)
            end = n if end == -1 else end
            phrase = " ".join(text[i + 1:end].split())
            if phrase:
                out.append((phrase, True))
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            out.append((text[i:j], False))
            i = j
    return out
