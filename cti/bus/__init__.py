"""The bus: the in-memory bus and the MQTT bus behind one interface."""
