"""Activities: must-talks, visits, political birthdays, zones, teams, posts, work points, lessons."""
