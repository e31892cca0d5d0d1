"""Python steps of the sample pipeline: each takes and returns a polars LazyFrame."""

import polars as pl


def add_features(trips: pl.LazyFrame) -> pl.LazyFrame:
    return trips.with_columns(
        (pl.col("fare") / pl.col("distance_km")).alias("fare_per_km"),
        pl.col("pickup_time").dt.hour().alias("hour"),
    )
