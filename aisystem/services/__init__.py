"""Writes and business rules (HackSoft style: ``<entity>_<action>``, keyword-only arguments)."""
