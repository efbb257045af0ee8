"""A serial voice modem line (Hayes AT): the sans-I/O parser, call state machine and
start-up negotiator; the asyncio shell (:mod:`.line`). See docs/modem.md."""
