"""Analytics assets: RFM, lifecycle stages (with history) and the customer 360 profile, all for
the night's as-of date (the run's `scv/as_of` tag)."""


import dagster as dg

from dagster_project import constants as C
from dagster_project.assets.common import night
from dagster_project.metadata import readable
from dagster_project.resources import WarehouseResource
from sources.config import Config
from transforms.lifecycle import lifecycle_params
from transforms.rfm import segment_rules, segment_table
from warehouse.store import write_frame, write_model


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
        with warehouse.store.stage() as con:
            write_frame(con, "rfm_segment_map", segment_table(segment_rules(cfg.rfm)))
            rows = write_model(con, "rfm", {"as_of": n.as_of})
            segments = dict(
                con.execute(
                    "SELECT segment, count(*) FROM scv.rfm GROUP BY ALL ORDER BY 2 DESC"
                ).fetchall()
            )
            currencies = [
                r[0] or "unnamed"
                for r in con.execute(
                    "SELECT DISTINCT coalesce(reporting_currency, currency) FROM stage.orders "
                    "WHERE status = 'completed' AND CAST(order_date AS DATE) <= $as_of ORDER BY 1",
                    {"as_of": n.as_of},
                ).fetchall()
            ]
            monetary_null = con.execute("SELECT count(*) FROM scv.rfm WHERE monetary IS NULL").fetchall()[0][0]
        one_currency = not monetary_null
        return dg.MaterializeResult(
            metadata=readable({
                "dagster/row_count": rows,
                "as_of_date": n.as_of.isoformat(),
                "segments": segments,
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
                    metadata={"customers_without_monetary": int(monetary_null)},
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
        params = {"as_of": n.as_of, **lifecycle_params(cfg.lifecycle)}
        with warehouse.store.stage() as con:
            warehouse.store.stage_previous(con, ["lifecycle", "lifecycle_history"])
            rows = write_model(con, "lifecycle", params)
            hist = write_model(con, "lifecycle_history", params)
            stages = dict(
                con.execute("SELECT stage, count(*) FROM scv.lifecycle GROUP BY ALL ORDER BY 2 DESC").fetchall()
            )
            moves = dict(
                con.execute(
                    "SELECT coalesce(from_stage, '(new)') || ' -> ' || to_stage, count(*) "
                    "FROM scv.lifecycle_history WHERE as_of_date = $as_of GROUP BY ALL",
                    {"as_of": n.as_of},
                ).fetchall()
            )
        yield dg.MaterializeResult(
            asset_key="lifecycle",
            metadata=readable({"dagster/row_count": rows, "stages": stages, "as_of_date": n.as_of.isoformat()}),
        )
        yield dg.MaterializeResult(
            asset_key="lifecycle_history",
            metadata=readable({"dagster/row_count": hist, "changes_this_night": moves}),
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
        n = night(context)
        with warehouse.store.stage() as con:
            rows = write_model(con, "customer_profile", {"as_of": n.as_of}
            )
            buyers = con.execute(
                "SELECT count(*) FROM scv.customer_profile WHERE orders_count > 0"
            ).fetchall()[0][0]
        return dg.MaterializeResult(
            metadata=readable({"dagster/row_count": rows, "customers_with_orders": int(buyers)})
        )

    return [rfm, lifecycle, customer_profile]
