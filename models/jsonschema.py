"""JSON Schemas of the topic contracts, generated into ``models/schemas/``.

Non-Python producers and consumers read these; a test fails when they fall behind the
models. Regenerate with ``python -m kubeopera.models.jsonschema models/schemas``.
"""

import json
import sys
from pathlib import Path

from kubeopera.models.topics import TOPIC_MODELS


def schema_documents() -> dict[str, str]:
    """File name -> schema text, one per topic (``kubeopera.metrics.v1.json`` ...)."""
    documents = {}
    for topic, model in TOPIC_MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$id"] = f"{topic.value}.json"
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        documents[f"{topic.value}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return documents


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_documents().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "models/schemas")):
        print(path)
