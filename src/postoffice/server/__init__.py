"""The asyncio layer: the process that serves, its listeners and session drivers."""
