"""Spreadsheets in and out: rosters and project lists imported as ordinary commands, every view exported."""
