"""Liaison: joint meetings, dual-compliance letters, co-building with villages, mediation, village support."""
