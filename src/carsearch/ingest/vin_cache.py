"""VIN decoding through the Postgres cache: vPIC is asked once per VIN.

A VIN decoded online is final. One decoded offline (vPIC down, slow or disabled) is cached
as offline, so runs do not keep asking; `redecode_offline` asks vPIC again later and
replaces it, and the listings carrying it, when vPIC answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import psycopg

from carsearch.ingest import repository
from carsearch.ingest.vin_decode import DecodedVin, VinDecoder, decode_offline
from carsearch.observability.metrics import VIN_DECODES


class CachedVinDecoder:
    def __init__(self, conn: psycopg.Connection, decoder: VinDecoder | None) -> None:
        """`decoder` None decodes offline only (vPIC disabled by setting)."""
        self.conn = conn
        self.decoder = decoder
        self.online_calls = 0
        self.offline_fallbacks = 0

    async def decode(self, vins: Sequence[str]) -> dict[str, DecodedVin]:
        wanted = list(dict.fromkeys(vins))
        cached = await asyncio.to_thread(repository.cached_decodes, self.conn, wanted)
        decoded = {vin: DecodedVin.from_json(document) for vin, document in cached.items()}
        VIN_DECODES.labels("cache").inc(len(decoded))
        missing = [vin for vin in wanted if vin not in decoded]
        if missing:
            fresh = await self._decode_uncached(missing)
            await asyncio.to_thread(
                repository.store_decodes,
                self.conn,
                [(vin, result.source, result.to_json()) for vin, result in fresh.items()],
            )
            decoded.update(fresh)
        return decoded

    async def _decode_uncached(self, vins: Sequence[str]) -> dict[str, DecodedVin]:
        if self.decoder is None:
            results = await asyncio.to_thread(lambda: {vin: decode_offline(vin) for vin in vins})
            VIN_DECODES.labels("fallback").inc(len(results))
        else:
            self.online_calls += 1
            results = await _decode_counted(self.decoder, vins)
        self.offline_fallbacks += sum(1 for r in results.values() if r.needs_online_decode)
        return results

    async def redecode_offline(self, limit: int = 500) -> int:
        """Ask vPIC again for VINs decoded offline; returns how many it now knows."""
        if self.decoder is None:
            return 0
        vins = await asyncio.to_thread(repository.offline_decoded_vins, self.conn, limit)
        if not vins:
            return 0
        results = await _decode_counted(self.decoder, vins)
        online = {vin: r for vin, r in results.items() if not r.needs_online_decode}
        await asyncio.to_thread(self._replace, online)
        return len(online)

    def _replace(self, online: dict[str, DecodedVin]) -> None:
        with self.conn.transaction():
            repository.store_decodes(
                self.conn, [(vin, r.source, r.to_json()) for vin, r in online.items()]
            )
            repository.set_listing_decodes(
                self.conn, {vin: r.to_json() for vin, r in online.items()}
            )


async def _decode_counted(decoder: VinDecoder, vins: Sequence[str]) -> dict[str, DecodedVin]:
    """decode_many, each VIN counted: answered by vPIC, decoded offline, or failed."""
    try:
        results = await decoder.decode_many(vins)
    except Exception:
        VIN_DECODES.labels("error").inc(len(vins))
        raise
    online = sum(1 for result in results.values() if not result.needs_online_decode)
    VIN_DECODES.labels("vpic").inc(online)
    VIN_DECODES.labels("fallback").inc(len(results) - online)
    return results
