"""Where each prompt clip is, and how long it plays.

A clip is named within its language (:mod:`.speech`): ``zh``/``nin_qianmian_haiyou``.
A center's own recording (``<own_dir>/<lang>/<name>.wav``) wins over the shipped one
(``sounds/prompts/<lang>/<name>.wav``). Lengths come from the WAV headers, read once
per file; the flow cores time their key timeouts by them, so the timeout starts when
the caller has heard the prompt. A clip that is missing or unreadable has length 0 and
no file: the flow goes on without it (the error is logged once, by the caller of
:meth:`PromptFiles.problems`).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from telephony_adapters.media.player import WavError, read_wav_layout

#: Bytes of a WAV header read to find its length (the fmt and data chunk headers).
_HEADER_BYTES = 4096


class PromptFiles:
    """Prompt clips by language and name: their files and lengths (module docstring)."""

    def __init__(self, own_dir: str | Path = "") -> None:
        self._own = Path(own_dir) if own_dir else None
        self._shipped = (
            Path(str(resources.files("telephony_adapters.media"))) / "sounds" / "prompts"
        )
        self._known: dict[tuple[str, str], tuple[str, float]] = {}
        self.problems: dict[tuple[str, str], str] = {}
        """Clips that could not be used, and why (each found once)."""

    def path(self, language: str, name: str) -> str:
        """The clip's file ('' when there is none that plays)."""
        return self._find(language, name)[0]

    def length(self, language: str, name: str) -> float:
        """How long the clip plays, in seconds (0 when there is none)."""
        return self._find(language, name)[1]

    def _find(self, language: str, name: str) -> tuple[str, float]:
        key = (language, name)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._read(language, name)
        return known

    def _read(self, language: str, name: str) -> tuple[str, float]:
        if not _safe(language) or not _safe(name):
            self.problems[(language, name)] = "not a clip name (letters, digits, _ and -)"
            return "", 0.0
        candidates = [self._shipped / language / f"{name}.wav"]
        if self._own is not None:
            candidates.insert(0, self._own / language / f"{name}.wav")
        for path in candidates:
            try:
                with path.open("rb") as file:
                    head = file.read(_HEADER_BYTES)
            except FileNotFoundError:
                continue
            except OSError as exc:
                self.problems[(language, name)] = f"{path}: cannot be read ({exc})"
                continue
            try:
                layout = read_wav_layout(head, str(path))
            except WavError as exc:
                self.problems[(language, name)] = str(exc)
                continue
            return str(path), layout.duration_s
        self.problems.setdefault((language, name), "no such clip (own or shipped)")
        return "", 0.0


def _safe(name: str) -> bool:
    return bool(name) and len(name) <= 64 and all(c.isascii() and (c.isalnum() or c in "_-")
                                                  for c in name)  # fmt: skip
