"""CarSearch: collects car listings, keeps their history, and serves fast search."""

__version__ = "0.1.0"
