"""Market value of a listing from its comparables: pure, no I/O.

Per (make, model) a least-squares fit of log(price) on age, log1p(mileage), condition and
the common trims; outliers are trimmed and the fit repeated. Every listing is estimated
held out (its own price never informs its estimate): a listing in the fit gets its
leave-one-out prediction, y_i - e_i / (1 - h_ii), which equals refitting without it.

New cars: a new car is priced off its sticker, not off the used market, so it is only
appraised against other new cars of its model. The fit carries a `new` intercept and its
own age slope (last year's new stock is discounted, it does not depreciate like a used
car), and mileage counts only for used cars (delivery miles say nothing). With fewer
than MIN_NEW_COMPARABLES new comparables in the group, new cars are left out of the fit
and rated "none" with reason "new_car".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Rating = Literal["great", "good", "fair", "high", "overpriced", "none"]
NoneReason = Literal["no_price", "no_mileage", "too_few_comparables", "new_car", "rare_model"]

# A group needs this many comparables for a fit; a model listed fewer times in all (any
# status, priced or not) is a rare model rather than a thinly priced one.
MIN_COMPARABLES = 12
# A trim gets its own price level only with this many comparables; others share the base.
MIN_TRIM_COMPARABLES = 8
MIN_NEW_COMPARABLES = 8
# A condition indicator with fewer listings than this would fit them exactly; drop it.
MIN_INDICATOR_SUPPORT = 3
# |residual| above OUTLIER_MADS robust standard deviations is trimmed before the refit.
OUTLIER_MADS = 3.0
MAD_TO_SIGMA = 1.4826
# Floor on the robust scale, so a near-perfect fit does not call every listing an outlier.
MIN_RESIDUAL_SCALE = 0.01
# A listing that alone determines a coefficient has no held-out estimate.
MAX_LEVERAGE = 0.95
# Keeps X'X positive definite when columns are collinear (one model year of new stock).
RIDGE = 1e-6

# Rating tiers by percent difference of the asking price from the estimate, checked in
# order: at most -10% great, at most -5% good, within +-5% fair, at most +10% high, else
# overpriced. Asking prices in the seed scatter about 7% (log sd) around the true value,
# so +-5% holds about half of the market in "fair" and the outer tiers ~1 listing in 6.
GREAT_MAX_PERCENT = -10.0
GOOD_MAX_PERCENT = -5.0
FAIR_MAX_PERCENT = 5.0
HIGH_MAX_PERCENT = 10.0

COMPARABLE_STATUSES = frozenset({"active", "sold"})


@dataclass(frozen=True, slots=True)
class Comparable:
    listing_id: int
    make: str
    model: str
    trim: str
    year: int
    mileage: int | None  # unknown mileage leaves a used car out (new cars need none)
    condition: str  # "new" | "used" | "cpo"
    price: int | None
    status: str  # "active" | "sold" | "removed"


@dataclass(frozen=True, slots=True)
class Appraisal:
    estimate: int | None
    rating: Rating
    reason: NoneReason | None = None
    comparables: int = 0
    difference: int | None = None
    percent: float | None = None


def is_comparable(listing: Comparable) -> bool:
    return (
        listing.status in COMPARABLE_STATUSES
        and listing.price is not None
        and listing.price > 0
        and (listing.mileage is not None or listing.condition == "new")
    )


def rating_for_percent(percent: float) -> Rating:
    if percent <= GREAT_MAX_PERCENT:
        return "great"
    if percent <= GOOD_MAX_PERCENT:
        return "good"
    if percent <= FAIR_MAX_PERCENT:
        return "fair"
    if percent <= HIGH_MAX_PERCENT:
        return "high"
    return "overpriced"


def appraise_all(listings: Sequence[Comparable], *, current_year: int) -> dict[int, Appraisal]:
    groups: dict[tuple[str, str], list[Comparable]] = defaultdict(list)
    for listing in listings:
        groups[(listing.make, listing.model)].append(listing)
    appraisals: dict[int, Appraisal] = {}
    for key in sorted(groups):
        group = sorted(groups[key], key=lambda listing: listing.listing_id)
        appraisals.update(_appraise_group(group, current_year))
    return appraisals


# -- the fit per group ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Design:
    current_year: int
    cpo: bool
    new: bool
    trims: tuple[str, ...]

    def row(self, listing: Comparable) -> list[float]:
        age = float(self.current_year - listing.year)
        is_new = listing.condition == "new"
        row = [1.0, age, 0.0 if is_new else math.log1p(max(0, listing.mileage or 0))]
        if self.cpo:
            row.append(1.0 if listing.condition == "cpo" else 0.0)
        if self.new:
            row.extend((1.0, age) if is_new else (0.0, 0.0))
        row.extend(1.0 if listing.trim == trim else 0.0 for trim in self.trims)
        return row


@dataclass(frozen=True, slots=True)
class _Fit:
    coefficients: list[float]
    cholesky: list[list[float]]

    def predict(self, row: Sequence[float]) -> float:
        return math.fsum(c * x for c, x in zip(self.coefficients, row, strict=True))

    def leverage(self, row: Sequence[float]) -> float:
        z = _solve_lower(self.cholesky, row)
        return math.fsum(v * v for v in z)


def _appraise_group(group: list[Comparable], current_year: int) -> dict[int, Appraisal]:
    comparables = [c for c in group if is_comparable(c)]
    new_count = sum(1 for c in comparables if c.condition == "new")
    include_new = new_count >= MIN_NEW_COMPARABLES
    fit_rows = [c for c in comparables if include_new or c.condition != "new"]

    def unrated_group(reason: NoneReason, available: int) -> dict[int, Appraisal]:
        # A listing's own reason (no price, new car) comes before the group's.
        return {
            c.listing_id: _unrated(_reason_before_fit(c, include_new) or reason, available)
            for c in group
        }

    if len(group) < MIN_COMPARABLES:
        return unrated_group("rare_model", len(fit_rows))
    if len(fit_rows) < MIN_COMPARABLES:
        return unrated_group("too_few_comparables", len(fit_rows))

    design = _design_for(fit_rows, current_year, include_new)
    rows = [design.row(c) for c in fit_rows]
    targets = [math.log(c.price or 1) for c in fit_rows]
    first = _fit(rows, targets)
    residuals = [y - first.predict(x) for x, y in zip(rows, targets, strict=True)]
    cutoff = OUTLIER_MADS * _robust_scale(residuals)
    kept = [i for i, r in enumerate(residuals) if abs(r) <= cutoff]
    if len(kept) < MIN_COMPARABLES:
        return unrated_group("too_few_comparables", len(kept))
    kept_rows = [rows[i] for i in kept]
    final = _fit(kept_rows, [targets[i] for i in kept])
    in_fit = {fit_rows[i].listing_id for i in kept}

    appraisals: dict[int, Appraisal] = {}
    for listing in group:
        early = _reason_before_fit(listing, include_new)
        if early in ("new_car", "no_mileage"):
            appraisals[listing.listing_id] = _unrated(early, len(kept))
            continue
        row = design.row(listing)
        log_estimate = final.predict(row)
        used = len(kept)
        if listing.listing_id in in_fit:
            leverage = final.leverage(row)
            if leverage > MAX_LEVERAGE:
                appraisals[listing.listing_id] = _unrated("too_few_comparables", used - 1)
                continue
            residual = math.log(listing.price or 1) - log_estimate
            log_estimate -= residual * leverage / (1 - leverage)
            used -= 1
        estimate = round(math.exp(log_estimate))
        appraisals[listing.listing_id] = _rated(listing, estimate, used)
    return appraisals


def _reason_before_fit(listing: Comparable, include_new: bool) -> NoneReason | None:
    if listing.condition == "new" and not include_new:
        return "new_car"
    if listing.price is None or listing.price <= 0:
        return "no_price"
    if listing.mileage is None and listing.condition != "new":
        return "no_mileage"
    return None


def _unrated(reason: NoneReason, comparables: int) -> Appraisal:
    return Appraisal(estimate=None, rating="none", reason=reason, comparables=comparables)


def _rated(listing: Comparable, estimate: int, comparables: int) -> Appraisal:
    if listing.price is None or listing.price <= 0:
        return Appraisal(estimate, "none", "no_price", comparables)
    difference = listing.price - estimate
    percent = 100.0 * difference / estimate
    return Appraisal(
        estimate=estimate,
        rating=rating_for_percent(percent),
        comparables=comparables,
        difference=difference,
        percent=round(percent, 1),
    )


def _design_for(fit_rows: Sequence[Comparable], current_year: int, include_new: bool) -> _Design:
    trim_counts: dict[str, int] = defaultdict(int)
    for listing in fit_rows:
        trim_counts[listing.trim] += 1
    common = sorted(t for t, n in trim_counts.items() if n >= MIN_TRIM_COMPARABLES)
    if len(common) == len(trim_counts):
        # Every trim is common: the most listed one becomes the base the others are read against.
        base = max(common, key=lambda t: (trim_counts[t], t))
        common.remove(base)
    cpo_count = sum(1 for c in fit_rows if c.condition == "cpo")
    return _Design(
        current_year=current_year,
        cpo=cpo_count >= MIN_INDICATOR_SUPPORT,
        new=include_new,
        trims=tuple(common),
    )


def _robust_scale(residuals: Sequence[float]) -> float:
    center = _median(residuals)
    mad = _median([abs(r - center) for r in residuals])
    return max(MAD_TO_SIGMA * mad, MIN_RESIDUAL_SCALE)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


# -- the small linear algebra: normal equations by Cholesky -------------------------


def _fit(rows: Sequence[Sequence[float]], targets: Sequence[float]) -> _Fit:
    width = len(rows[0])
    gram = [[0.0] * width for _ in range(width)]
    moment = [0.0] * width
    for row, target in zip(rows, targets, strict=True):
        for i, xi in enumerate(row):
            if xi == 0.0:
                continue
            moment[i] += xi * target
            gram_i = gram[i]
            for j in range(i + 1):
                gram_i[j] += xi * row[j]
    for i in range(1, width):
        gram[i][i] += RIDGE * len(rows)
    lower = _cholesky(gram)
    coefficients = _solve_upper_transposed(lower, _solve_lower(lower, moment))
    return _Fit(coefficients=coefficients, cholesky=lower)


def _cholesky(gram: Sequence[Sequence[float]]) -> list[list[float]]:
    """Lower factor of a symmetric positive definite matrix given by its lower triangle."""
    width = len(gram)
    lower = [[0.0] * width for _ in range(width)]
    for i in range(width):
        for j in range(i + 1):
            total = gram[i][j] - math.fsum(lower[i][k] * lower[j][k] for k in range(j))
            if i == j:
                lower[i][i] = math.sqrt(max(total, 1e-12))
            else:
                lower[i][j] = total / lower[j][j]
    return lower


def _solve_lower(lower: Sequence[Sequence[float]], b: Sequence[float]) -> list[float]:
    z: list[float] = []
    for i, row in enumerate(lower):
        z.append((b[i] - math.fsum(row[k] * z[k] for k in range(i))) / row[i])
    return z


def _solve_upper_transposed(lower: Sequence[Sequence[float]], z: Sequence[float]) -> list[float]:
    width = len(lower)
    x = [0.0] * width
    for i in reversed(range(width)):
        total = z[i] - math.fsum(lower[k][i] * x[k] for k in range(i + 1, width))
        x[i] = total / lower[i][i]
    return x
