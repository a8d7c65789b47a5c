"""Where the recorded pages and responses the tests replay live.

The cars.com pages ship with the package (the offline demo site serves them), so the
tests read that one copy; vPIC's responses are test data only.
"""

from __future__ import annotations

from pathlib import Path

import carsearch.ingest

CARSCOM_PAGES = Path(carsearch.ingest.__file__).parent / "demo_pages"
VPIC_RESPONSES = Path(__file__).parents[1] / "fixtures" / "vpic"
