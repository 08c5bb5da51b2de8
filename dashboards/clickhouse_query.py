"""A query of Grafana's ClickHouse data source (``grafana-clickhouse-datasource``) for
grafana-foundation-sdk, which has no builder for it.

The model follows the plugin's (``src/types/sql.ts``: ``CHSqlQuery``;
``src/types/queryBuilder.ts``: ``QueryType``; the ``format`` numbers are
``sqlutil.FormatQueryOption`` of grafana-plugin-sdk-go): the SQL editor (``editorType``
``sql``) with ``rawSql``, a ``queryType`` of ``table`` or ``timeseries``, and ``format``
0 (time series: long rows become one series per label) or 1 (table). ``register()``
lets the SDK read such queries back from dashboard JSON.
"""

import enum
import typing
from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "grafana-clickhouse-datasource"


class Format(enum.IntEnum):
    """``sqlutil.FormatQueryOption``: how the plugin frames the rows."""

    TIME_SERIES = 0
    TABLE = 1


class QueryType(enum.StrEnum):
    """The plugin's ``QueryType`` (the editor's display format)."""

    TABLE = "table"
    TIME_SERIES = "timeseries"


class ClickHouseQuery(cogvariants.Dataquery):
    """One SQL query of the ClickHouse data source: ``ref_id`` (A, B, ...), the data
    source it runs on, its ``raw_sql`` (macros and variables unexpanded), ``query_type``
    and ``format``."""

    def __init__(
        self,
        ref_id: str = "A",
        raw_sql: str = "",
        query_type: QueryType = QueryType.TABLE,
        format_val: Format = Format.TABLE,
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.query_type = query_type
        self.format_val = format_val
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "editorType": "sql",
            "queryType": str(self.query_type),
            "format": int(self.format_val),
            "rawSql": self.raw_sql,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource.to_json()
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> typing.Self:
        """Reads a query back; raises ``ValueError`` for one that is not the SQL editor's
        or has an unknown ``queryType`` or ``format``, ``KeyError`` without ``rawSql``."""
        if data.get("editorType") != "sql":
            raise ValueError(f"editorType {data.get('editorType')!r} is not 'sql'")
        source = data.get("datasource")
        return cls(
            ref_id=data["refId"],
            raw_sql=data["rawSql"],
            query_type=QueryType(data["queryType"]),
            format_val=Format(data["format"]),
            datasource=DataSourceRef.from_json(source) if source else None,
        )


class ClickHouseQueryBuilder(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds a ``ClickHouseQuery`` the SDK's panel builders take as a target."""

    def __init__(self, raw_sql: str, datasource: DataSourceRef) -> None:
        self._internal = ClickHouseQuery(raw_sql=raw_sql, datasource=datasource)

    def build(self) -> ClickHouseQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def time_series(self) -> typing.Self:
        self._internal.query_type = QueryType.TIME_SERIES
        self._internal.format_val = Format.TIME_SERIES
        return self


def register() -> None:
    """Teach the SDK's JSON reader the ClickHouse query (dashboard ``from_json``)."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(
            identifier=DATASOURCE_TYPE, from_json_hook=ClickHouseQuery.from_json
        )
    )
