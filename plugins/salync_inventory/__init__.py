"""Salync inventory SaaS for Salync Core: its API emulator (the platform plugin to come)."""
