"""A serial voice modem line (Hayes AT): the sans-I/O parser, call state machine and
start-up negotiator. See REFERENCE §4 and issue 9."""
