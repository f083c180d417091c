"""The site-days of the fault-injection suite (imported by its conftest and test modules by name:
``conftest`` is ambiguous when the whole test tree is collected)."""

from __future__ import annotations

from datetime import date

DAYS = [date(2025, 8, 5), date(2025, 8, 6)]  # dates no other test uses
SITES = ["ahvaz-w", "cantarell", "ebocha", "hassi-messaoud", "parshall", "rumaila-n"]
