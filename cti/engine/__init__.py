"""The engine: the asyncio service around the router, in parts."""
