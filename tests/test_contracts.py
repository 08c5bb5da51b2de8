"""The contracts: schemas in step with the models, and what each model refuses."""

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from builders import scrape
from pydantic import ValidationError

from kubeopera.models import MetricBatch, NodePrice, ObjectChange, Topic, message_key
from kubeopera.models.jsonschema import schema_documents

SCHEMAS = Path(__file__).resolve().parents[1] / "models" / "schemas"
AT = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_json_schemas_are_up_to_date() -> None:
    """Fails when a model changed without `python -m kubeopera.models.jsonschema models/schemas`."""
    documents = schema_documents()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.glob("*.json")}
    assert sorted(on_disk) == sorted(documents), "schema files differ from the topics"
    for name, text in documents.items():
        assert on_disk[name] == text, f"{name} is stale: regenerate the schemas"


def test_every_topic_has_a_schema_with_its_version() -> None:
    for topic in Topic:
        assert f"{topic.value}.json" in schema_documents()
        assert topic.value.endswith(".v1")


def test_timestamps_normalise_to_utc_milliseconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    price = NodePrice(
        cluster="c", node="n", observed_at=datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=plus_two)
    )
    assert price.observed_at == datetime(2026, 3, 2, 10, 0, 0, 123000, tzinfo=UTC)
    assert price.observed_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValidationError, match="no timezone"):
        NodePrice(cluster="c", node="n", observed_at=datetime(2026, 3, 2))


def test_metric_batches_refuse_negative_nan_and_ragged_columns() -> None:
    good = scrape("c", "n", AT, 1, (2, 8), {("ns", "p"): (0.5, 1)}).model_dump(mode="json")
    bad_values = [
        ("cpu_cores", [-0.1]),
        ("cpu_cores", [float("nan")]),
        ("memory_working_set_bytes", [float("inf")]),
    ]
    for field, value in bad_values:
        broken = {**good, "containers": {**good["containers"], field: value}}
        with pytest.raises(ValidationError):
            MetricBatch.model_validate(broken)
    ragged = {**good, "containers": {**good["containers"], "pod": ["p", "q"]}}
    with pytest.raises(ValidationError, match="differ in length"):
        MetricBatch.model_validate(ragged)
    backwards = {**good, "window_end": good["window_start"]}
    with pytest.raises(ValidationError, match="window_end must be after"):
        MetricBatch.model_validate(backwards)


def test_unknown_fields_and_schema_versions_are_refused() -> None:
    price = NodePrice(cluster="c", node="n", observed_at=AT).model_dump(mode="json")
    with pytest.raises(ValidationError):
        NodePrice.model_validate({**price, "schema_version": 2})
    with pytest.raises(ValidationError):
        NodePrice.model_validate({**price, "surprise": 1})


def test_keys_follow_the_design() -> None:
    change = ObjectChange(
        cluster="c",
        api_version="apps/v1",
        kind="Deployment",
        namespace="shop",
        name="web",
        uid="u1",
        observed_at=AT,
        change="ADDED",
    )
    assert message_key(change) == "c/Deployment/shop/web"
    assert message_key(scrape("c", "n1", AT, 1, (2, 8), {})) == "c"  # a cluster in one place
