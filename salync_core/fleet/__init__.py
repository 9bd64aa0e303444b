"""Many accounts on one machine: each a directory with a configuration and a mirror."""

from salync_core.fleet.account import (
    Account,
    AccountOutcome,
    discover_accounts,
    run_account,
    run_account_blocking,
)
from salync_core.fleet.fleet import Fleet

__all__ = [
    "Account",
    "AccountOutcome",
    "Fleet",
    "discover_accounts",
    "run_account",
    "run_account_blocking",
]
