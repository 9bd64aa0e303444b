"""The SQLite mirror: schema, the page transaction, and the bookkeeping around syncs."""

from salync_core.store.database import Store, Transaction, utc_now

__all__ = ["Store", "Transaction", "utc_now"]
