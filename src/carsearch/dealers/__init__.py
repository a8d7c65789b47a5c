"""Dealers: their profiles, their inventory counts, and finding them near a ZIP code."""
