"""Sales Layer PIM for Salync Core: the Catalog API 2.0 platform and its emulator."""
