"""Call scripts: the file format, its validator, the runner, safe variable substitution.

- :mod:`scripts_engine.model`: the TOML format as pydantic models (``[script]`` metadata,
  ``[nodes.ID]`` tables of kind say, question, input, branch, action, end).
- :mod:`scripts_engine.expr`: the safe condition language (hand-written parser, no eval).
- :mod:`scripts_engine.text`: ``{customer.name}`` substitution; a missing value shows as
  ``‹customer.name?›``; customer text is inserted as plain text, never interpreted.
- :mod:`scripts_engine.validate`: ``load_script(path) -> (Script | None, [Problem])``, each
  problem naming file, line and node (``cti script check``).
- :mod:`scripts_engine.runner`: the pure state machine the console drives (start, answer,
  advance, back; effects recorded, never performed; resumable with the started version).
- :mod:`scripts_engine.catalog`: the script a queue names (a shipped example or a path),
  read again only when the file changes, bounded in size, with its SHA-256; a broken file
  gives problems, never an exception.

This package may import only ``cti`` models (and ``cti.errors``).
"""
