"""Call scripts: the file format, its validator, the runner, safe variable substitution.

Not built yet (issue 8). The console will run a script as a pure state machine from
here; this package may import only ``cti`` models.
"""
