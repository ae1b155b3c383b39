"""Challenge services: the rules, as plain functions every view, API and command calls."""
