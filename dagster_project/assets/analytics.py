"""Analytics assets: RFM, lifecycle stages (with history) and the customer 360 profile, all for
the night's as-of date (the run's `scv/as_of` tag); the tables are written by
`warehouse.analytics`."""


import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import night
from dagster_project.metadata import readable
from dagster_project.resources import WarehouseResource
from sources.config import Config
from warehouse.analytics import write_customer_profile, write_lifecycle, write_rfm


def build_analytics_assets(cfg: Config, partitions) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=C.GROUP_ANALYTICS,
        partitions_def=partitions,
        deps=["customer_xref", "activity"],
        kinds={"duckdb", "sql"},
        check_specs=[
            dg.AssetCheckSpec(
                C.CHECK_MONETARY_ONE_CURRENCY,
                asset="rfm",
                description="Monetary is a sum in one currency: every counted order is in the "
                "reporting currency, or in the same currency when none is set. Otherwise monetary "
                "and m_score are NULL and segments come from recency and frequency alone.",
            )
        ],
    )
    def rfm(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        """One row per customer with at least one completed order up to the as-of date:
        recency, frequency, monetary, 1-5 scores (ties share a score) and the named segment."""
        n = night(context)
        scored = write_rfm(cfg, warehouse.store, n.as_of)
        currencies, one_currency = scored.currencies, not scored.without_monetary
        return dg.MaterializeResult(
            metadata=readable({
                "dagster/row_count": scored.rows,
                "as_of_date": n.as_of.isoformat(),
                "segments": scored.segments,
                "reporting_currency": cfg.currency.reporting or "none: amounts stay in their own currency",
                "order_currencies": ", ".join(currencies),
            }),
            check_results=[
                dg.AssetCheckResult(
                    check_name=C.CHECK_MONETARY_ONE_CURRENCY,
                    passed=one_currency,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=(
                        f"monetary in {currencies[0] if currencies else 'no currency'}"
                        if one_currency
                        else f"orders in {', '.join(currencies)} and no currency.reporting: monetary "
                        "and m_score left empty (amounts in different currencies are never added); "
                        "set currency.reporting with rates to score spend"
                    ),
                    metadata={"customers_without_monetary": scored.without_monetary},
                )
            ],
        )

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(
                "lifecycle",
                group_name=C.GROUP_ANALYTICS,
                deps=["customer", "activity"],
                description="One row per customer: lifecycle stage on the as-of date.",
                kinds={"duckdb", "sql"},
            ),
            dg.AssetSpec(
                "lifecycle_history",
                group_name=C.GROUP_ANALYTICS,
                deps=["customer", "activity"],
                description="One row per stage change, kept across runs.",
                kinds={"duckdb", "sql"},
            ),
        ],
        partitions_def=partitions,
    )
    def lifecycle(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        n = night(context)
        lc = write_lifecycle(cfg, warehouse.store, n.as_of)
        yield dg.MaterializeResult(
            asset_key="lifecycle",
            metadata=readable({"dagster/row_count": lc.rows, "stages": lc.stages, "as_of_date": n.as_of.isoformat()}),
        )
        yield dg.MaterializeResult(
            asset_key="lifecycle_history",
            metadata=readable({"dagster/row_count": lc.history_rows, "changes_this_night": lc.moves}),
        )

    @dg.asset(
        group_name=C.GROUP_ANALYTICS,
        partitions_def=partitions,
        deps=["customer", "touchpoint", "consent", rfm, "lifecycle"],
        kinds={"duckdb", "sql"},
    )
    def customer_profile(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per customer: the 360 view (identity, orders and spend per channel, engagement,
        open tickets, consent per purpose, RFM segment, lifecycle stage)."""
        rows, buyers = write_customer_profile(warehouse.store, night(context).as_of)
        return dg.MaterializeResult(
            metadata=readable({"dagster/row_count": rows, "customers_with_orders": buyers})
        )

    return [rfm, lifecycle, customer_profile]
