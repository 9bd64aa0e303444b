"""Salla Merchant API platform plugin (``plugin = "salla"``) and its emulator."""
