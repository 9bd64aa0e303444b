"""Pure sync state: cursors and their rules, testable without a database or a server."""
