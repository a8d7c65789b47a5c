"""The reference makes and models shipped with CarSearch (seed/data/vehicles.json)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, model_validator

from carsearch.listings.vocab import BodyStyle, Drivetrain, FuelType, Transmission


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    body_style: BodyStyle
    segment: str
    msrp_min: int = Field(gt=0)
    msrp_max: int = Field(gt=0)
    years: tuple[int, int]
    drivetrains: tuple[Drivetrain, ...] = Field(min_length=1)
    fuel_types: tuple[FuelType, ...] = Field(min_length=1)
    transmissions: tuple[Transmission, ...] = Field(min_length=1)
    trims: tuple[str, ...] = Field(min_length=1)
    engines: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered_ranges(self) -> ModelSpec:
        if self.msrp_min > self.msrp_max or self.years[0] > self.years[1]:
            raise ValueError(f"{self.name}: msrp or year range out of order")
        return self


class MakeSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    country: str
    wmis: tuple[str, ...] = Field(min_length=1)
    models: tuple[ModelSpec, ...] = Field(min_length=1)


class ReferenceData(BaseModel):
    makes: tuple[MakeSpec, ...]


def slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@lru_cache
def load_reference() -> tuple[MakeSpec, ...]:
    text = resources.files("carsearch.seed").joinpath("data/vehicles.json").read_text("utf-8")
    return ReferenceData.model_validate_json(text).makes
