"""Custom price sheets in OpenCost's CSV format: which price wins, and bad sheets."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from builders import allocate_messages, node_price, scrape
from conftest import SHARED_DATA

from kubeopera.models.catalogue import Catalogue, CatalogueError
from kubeopera.models.price_sheet import PriceSheet
from kubeopera.streams.pricing import Pricer, PriceSource

AT = datetime(2026, 3, 2, tzinfo=UTC)
HEADER = (
    "EndTimestamp,InstanceID,Region,AssetClass,InstanceIDField,InstanceType,"
    "MarketPriceHourly,Version\n"
)


def sheet(tmp_path: Path, rows: str) -> PriceSheet:
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + rows)
    return PriceSheet.from_csv(path)


def test_opencost_sample_sheet_prices_its_node() -> None:
    path = SHARED_DATA / "pricing" / "opencost" / "pricing_schema.csv"
    if not path.exists():
        pytest.skip(f"{path} is not there")
    opencost = PriceSheet.from_csv(path)
    node = "gke-standard-cluster-1-pool-1-91dc432d-cg69"
    assert opencost.node_price(node, "", "") == 0.1337
    assert opencost.by_type == {}  # its GPU rows are skipped


def test_most_specific_and_latest_price_wins(tmp_path: Path) -> None:
    prices = sheet(
        tmp_path,
        "2026-01-01 00:00:00 UTC,,,node,,m5.large,0.090,\n"
        "2026-02-01 00:00:00 UTC,,,node,,m5.large,0.080,\n"  # later: wins over 0.090
        "2026-01-01 00:00:00 UTC,,eu-west-1,node,,m5.large,0.070,\n"
        "2026-01-01 00:00:00 UTC,special,,node,metadata.name,,0.050,\n",
    )
    assert prices.node_price("n1", "us-east-1", "m5.large") == 0.080
    assert prices.node_price("n1", "eu-west-1", "m5.large") == 0.070
    assert prices.node_price("special", "eu-west-1", "m5.large") == 0.050
    assert prices.node_price("n1", "us-east-1", "c5.large") is None


def test_sheet_beats_facts_and_catalogue_and_prices_unknown_types(tmp_path: Path) -> None:
    prices = sheet(tmp_path, "2026-01-01 00:00:00 UTC,,,node,,x9.mega,1.25,\n")
    catalogue = Catalogue.builtin()
    pricer = Pricer(catalogue, sheet=prices)
    unknown = node_price("c", "n", "x9.mega", AT)
    assert pricer.resolve(unknown).usd_per_hour == 1.25
    assert pricer.resolve(unknown).price_source == PriceSource.PRICE_SHEET
    spot = node_price("c", "n", "x9.mega", AT, spot_usd_per_hour=0.4)
    assert pricer.resolve(spot).usd_per_hour == 1.25
    on_catalogue = node_price("c", "n", "m5.large", AT)
    assert pricer.resolve(on_catalogue).usd_per_hour == 0.096
    assert pricer.resolve(on_catalogue).price_source == PriceSource.CATALOGUE

    rows = allocate_messages([unknown, scrape("c", "n", AT, 60, (8, 32), {})], catalogue, prices)
    assert rows["total_cost"].sum() == pytest.approx(1.25)  # all idle, one hour


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("InstanceType,MarketPriceHourly\nm5.large,0.1\n", "lacks OpenCost columns"),
        (HEADER + "2026-01-01,,,node,,m5.large,cheap,\n", "row 2: could not convert"),
        (HEADER + "2026-01-01,i-123,,node,spec.providerID,,0.1,\n", "row 2: a node row needs"),
    ],
)
def test_bad_sheets_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CatalogueError, match=message):
        PriceSheet.from_csv(path)
    with pytest.raises(CatalogueError, match="cannot read price sheet"):
        PriceSheet.from_csv(tmp_path / "absent.csv")


def test_each_price_records_whose_region_it_is(tmp_path: Path) -> None:
    """The catalogue holds us-east-1 on-demand prices: a node elsewhere priced from it is
    recorded as such (reports then say so); a sheet's or the market's price is the
    node's own region's; OpenCost's default unit prices are no region's."""
    prices = sheet(tmp_path, "2026-01-01 00:00:00 UTC,,eu-west-1,node,,c5.large,0.096,\n")
    pricer = Pricer(Catalogue.builtin(), sheet=prices)

    def in_region(instance_type: str, region: str, **market: float) -> tuple[str, str]:
        fact = node_price("c", "n", instance_type, AT, **market).model_copy(
            update={"region": region, "zone": f"{region}a"}
        )
        resolved = pricer.resolve(fact)
        return str(resolved.price_source), resolved.price_region

    assert in_region("m5.large", "eu-west-1") == ("catalogue", "us-east-1")
    assert in_region("m5.large", "us-east-1") == ("catalogue", "us-east-1")
    assert in_region("c5.large", "eu-west-1") == ("price_sheet", "eu-west-1")
    assert in_region("m5.large", "us-west-2", spot_usd_per_hour=0.03) == ("market", "us-west-2")
    assert in_region("x9.mega", "us-west-2") == ("default", "")
