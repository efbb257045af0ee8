"""The application: the ``cti`` command, one module per subcommand, and the demo."""
