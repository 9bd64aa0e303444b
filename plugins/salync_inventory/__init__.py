"""Salync inventory SaaS for Salync Core: its platform plugin and its API emulator."""
