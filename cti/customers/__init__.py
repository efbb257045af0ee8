"""The customer base: customers, their numbers and history, search, import and export."""
