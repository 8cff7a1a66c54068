"""What the gateway hides in answers before they leave it (issue 18, "Masking"). Pure.

- **Secrets**: in every Secret the gateway passes (a get, each item of a list, a watch event's
  object, a Table row's object), the values of ``data`` and ``stringData`` become :data:`MASK`
  (keys kept, so ``kubectl get secret -o json`` still says which keys exist), and so does the
  ``kubectl.kubernetes.io/last-applied-configuration`` annotation, which repeats them.
- **Patterns**: in every JSON string value of any answer, and in ``pods/log`` text, matches of
  :data:`DEFAULT_PATTERNS` (AWS access key ids, bearer tokens, private key blocks) and of the
  operator's own regexes become :data:`MASK`.
- **Streams**: :class:`LogMasker` masks log text as it arrives, by whole lines (a match can never be
  split across chunks: a partial line waits for its end), with PEM private key blocks masked from
  their BEGIN line to their END line; :func:`mask_watch_lines` does the same for watch events (one
  JSON object per line).

Fail closed: :class:`Unmaskable` for what must be masked but cannot be read (not JSON, a line longer
than :data:`MAX_LINE`); the gateway refuses such an answer instead of passing it raw.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DomainError

MASK = "****"
MAX_LINE = 1024 * 1024  # a log or watch line longer than this is not passed at all
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

DEFAULT_PATTERNS: tuple[tuple[str, str], ...] = (
    ("aws_access_key_id", r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[0-9A-Z]{16}\b"),
    ("bearer_token", r"\b(?i:bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*"),
    ("private_key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----"),
)
_KEY_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")


class Unmaskable(DomainError):
    """An answer the gateway must mask but cannot read: it is refused, never passed raw."""

    code = "unmaskable_answer"


@dataclass(frozen=True)
class Masking:
    """The patterns in force: the defaults and the operator's (``name -> regex``, validated at load)."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    combined: re.Pattern[str] | None = None
    """All patterns as one alternation (one pass per string), when they combine (an operator's pattern
    with a global inline flag does not: then each runs in turn)."""

    @classmethod
    def of(cls, extra: Iterable[tuple[str, str]] = ()) -> Masking:
        compiled, texts = [], []
        for name, text in (*DEFAULT_PATTERNS, *extra):
            try:
                compiled.append((name, re.compile(text)))
            except re.error as error:
                raise ValueError(f"masking pattern {name!r} is not a regular expression: {error}") from None
            texts.append(text)
        try:
            combined: re.Pattern[str] | None = re.compile("|".join(f"(?:{t})" for t in texts))
        except re.error:
            combined = None
        return cls(tuple(compiled), combined)

    def text(self, value: str) -> tuple[str, int]:
        """``value`` with every match masked, and how many were."""
        if self.combined is not None:
            return self.combined.subn(MASK, value)
        count = 0
        for _, pattern in self.patterns:
            value, n = pattern.subn(MASK, value)
            count += n
        return value, count


@dataclass
class Masked:
    value: Any
    count: int = 0


def mask_answer(answer: Any, masking: Masking) -> Masked:
    """A JSON answer (already parsed) with Secrets and patterns masked."""
    result = Masked(None)
    result.value = _walk(answer, masking.text, result)
    return result


def mask_json_bytes(data: bytes, masking: Masking) -> tuple[bytes, int]:
    """A JSON answer's bytes, masked; :class:`Unmaskable` if they are not JSON."""
    try:
        parsed = json.loads(data)
        masked = mask_answer(parsed, masking)
    except (ValueError, RecursionError):  # too deep to walk is as unreadable as not JSON
        raise Unmaskable("the answer is not JSON the gateway can read, so it cannot be masked") from None
    if not masked.count:
        return data, 0
    return json.dumps(masked.value, separators=(",", ":")).encode(), masked.count


def _is_secret(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and str(obj.get("apiVersion", "v1")) == "v1"


def _walk(value: Any, text: Callable[[str], tuple[str, int]], out: Masked) -> Any:
    if isinstance(value, str):
        masked, n = text(value)
        out.count += n
        return masked
    if isinstance(value, dict):
        if value.get("kind") == "Secret" and _is_secret(value):
            value = _mask_secret(value, out)
        return {k: _walk(v, text, out) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, text, out) for v in value]
    return value


def _mask_secret(secret: dict[str, Any], out: Masked) -> dict[str, Any]:
    secret = dict(secret)
    for part in ("data", "stringData"):
        values = secret.get(part)
        if isinstance(values, dict):
            secret[part] = {k: MASK for k in values}
            out.count += len(values)
        elif values is not None:
            secret[part] = MASK  # not a map: whatever it is, it is not shown
            out.count += 1
    metadata = secret.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("annotations"), dict):
        annotations = metadata["annotations"]
        if LAST_APPLIED in annotations:
            secret["metadata"] = {**metadata, "annotations": {**annotations, LAST_APPLIED: MASK}}
            out.count += 1
    return secret


class LogMasker:
    """Masks a log stream chunk by chunk; ``feed`` returns what may be sent now, ``end`` the rest."""

    def __init__(self, masking: Masking, max_line: int = MAX_LINE) -> None:
        self.masking, self.max_line = masking, max_line
        self._partial = b""
        self._in_key = False
        self.count = 0

    def feed(self, chunk: bytes) -> bytes:
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if len(self._partial) > self.max_line:
            raise Unmaskable(f"a log line is longer than {self.max_line} bytes")
        return self._lines(data[:cut]) if cut else b""

    def end(self) -> bytes:
        rest, self._partial = self._partial, b""
        out = self._lines(rest) if rest else b""
        return out

    def _lines(self, data: bytes) -> bytes:
        text = data.decode("utf-8", errors="replace")
        if not self._in_key and not _KEY_BEGIN.search(text):  # whole lines, no key block: one pass
            masked, n = self.masking.text(text)
            self.count += n
            return masked.encode()
        out = []
        for line in text.splitlines(keepends=True):
            body = line.rstrip("\r\n")
            ending = line[len(body) :]
            if self._in_key:
                self.count += 1
                if _KEY_END.search(body):
                    self._in_key = False
                out.append(MASK + ending)
                continue
            begin = _KEY_BEGIN.search(body)
            if begin and not _KEY_END.search(body, begin.end()):
                self._in_key = True
                self.count += 1
                head, _ = self.masking.text(body[: begin.start()])
                out.append(head + MASK + ending)
                continue
            masked, n = self.masking.text(body)
            self.count += n
            out.append(masked + ending)
        return "".join(out).encode()


class WatchMasker:
    """Masks a watch stream (one JSON event per line) event by event."""

    def __init__(self, masking: Masking, max_line: int = MAX_LINE) -> None:
        self.masking, self.max_line = masking, max_line
        self._partial = b""
        self.count = 0
        self.events = 0

    def feed(self, chunk: bytes) -> bytes:
        data = self._partial + chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if len(self._partial) > self.max_line:
            raise Unmaskable(f"a watch event is longer than {self.max_line} bytes")
        return self._events(data[:cut].split(b"\n")[:-1]) if cut else b""

    def end(self) -> bytes:
        rest, self._partial = self._partial, b""
        return self._events([rest]) if rest.strip() else b""

    def _events(self, lines: Sequence[bytes]) -> bytes:
        out = []
        for line in lines:
            if not line.strip():
                out.append(line + b"\n")
                continue
            masked, n = mask_json_bytes(line, self.masking)
            self.count += n
            self.events += 1
            out.append(masked + b"\n")
        return b"".join(out)
