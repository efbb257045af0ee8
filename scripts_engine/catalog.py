"""Finding and loading the script a queue (or campaign) names.

A queue's ``script`` is either the name of a shipped example (``inbound_service_zh``, see
:func:`shipped_names`) or the path of a TOML file (absolute, or relative to the folder the
engine runs in). :class:`ScriptCatalog` reads a file again only when it changes, keeps
the exact text with its SHA-256 so a call can carry the version it started with, and
turns every failure (missing file, too big, not UTF-8, invalid) into problems naming file
and line: a broken script never stops a call, the call just runs without it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from scripts_engine.model import Script
from scripts_engine.validate import Problem, parse_script

log = logging.getLogger(__name__)

#: Largest script file sent with an offer (bytes of UTF-8). A real script is a few KiB.
MAX_SCRIPT_BYTES = 64 * 1024


@dataclass(frozen=True)
class LoadedScript:
    """A valid script and the exact text it was read from."""

    ref: str
    """The reference as configured (``inbound_service_en`` or a path)."""
    file: str
    """Where the text came from, for messages."""
    text: str
    sha256: str
    script: Script

    @property
    def name(self) -> str:
        return self.script.meta.name

    @property
    def version(self) -> str:
        return self.script.meta.version


def text_sha256(text: str) -> str:
    """The hex SHA-256 of a script's text (UTF-8): what identifies a version on the wire."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shipped_names() -> list[str]:
    """Names of the example scripts shipped with the package."""
    folder = resources.files("scripts_engine").joinpath("examples")
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    )


def is_path_ref(ref: str) -> bool:
    """Whether ``ref`` names a file (has a folder or ends in ``.toml``), not a shipped name."""
    return "/" in ref or "\\" in ref or ref.endswith(".toml")


def resolve(ref: str) -> Path:
    """The file a reference points at (which may not exist)."""
    if is_path_ref(ref):
        return Path(ref).expanduser()
    return Path(str(resources.files("scripts_engine").joinpath("examples", f"{ref}.toml")))


def read_script_text(ref: str) -> tuple[LoadedScript | None, list[Problem]]:
    """Read, bound and validate the script ``ref`` names: the script, or its problems."""
    path = resolve(ref)
    file = str(path)
    if not is_path_ref(ref) and ref not in shipped_names():
        shipped = ", ".join(shipped_names())
        return None, [
            Problem(
                ref,
                0,
                "",
                f"no shipped script named {ref!r} (shipped: {shipped}); give a path to a "
                ".toml file for your own",
            )
        ]
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [Problem(file, 0, "", f"cannot read the script: {exc.strerror or exc}")]
    if len(data) > MAX_SCRIPT_BYTES:
        return None, [
            Problem(
                file,
                0,
                "",
                f"the script is {len(data)} bytes; at most {MAX_SCRIPT_BYTES} are sent with a "
                "call (split it, or shorten its texts)",
            )
        ]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [Problem(file, 0, "", f"not UTF-8 text (byte {exc.start}): save it as UTF-8")]
    script, problems = parse_script(text, file)
    if problems or script is None:
        return None, problems
    return LoadedScript(ref, file, text, text_sha256(text), script), []


class ScriptCatalog:
    """Scripts by reference, each read again only when its file changes.

    :meth:`get` never raises: a script that cannot be used gives ``None``, and its
    problems are logged once per version of the file (as ``ERROR``, each naming file and
    line), not once per call.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[object, LoadedScript | None, tuple[Problem, ...]]] = {}

    def get(self, ref: str) -> LoadedScript | None:
        """The valid script ``ref`` names now, or ``None`` (problems logged)."""
        loaded, _ = self.lookup(ref)
        return loaded

    def lookup(self, ref: str) -> tuple[LoadedScript | None, tuple[Problem, ...]]:
        """The script ``ref`` names and the problems that kept it out, if any."""
        if not ref:
            return None, ()
        stamp = _stamp(resolve(ref))
        cached = self._cache.get(ref)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        try:
            loaded, found = read_script_text(ref)
        except Exception as exc:  # a script must never stop a call
            loaded, found = None, [Problem(ref, 0, "", f"could not be loaded: {exc!r}")]
        problems = tuple(found)
        if problems:
            log.error(
                "script %r is not used (calls are offered without it) until it is fixed:\n%s",
                ref,
                "\n".join(str(p) for p in problems),
            )
        elif loaded is not None and (cached is None or cached[1] != loaded):
            log.info("script %r: %s %s from %s", ref, loaded.name, loaded.version, loaded.file)
        self._cache[ref] = (stamp, loaded, problems)
        return loaded, problems


def _stamp(path: Path) -> object:
    """What changes when the file does: modification time, size, inode; None if absent."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)
