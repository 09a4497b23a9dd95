"""Tests against real servers and real service processes."""
