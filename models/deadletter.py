"""Dead letters: input the pipeline could not use, kept with the reason."""

from pydantic import ConfigDict, Field

from kubeopera.models.base import Contract, UtcDatetime


class DeadLetter(Contract):
    """A rejected message (topic ``deadletter``, key source topic)."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    source_topic: str
    partition: int = -1
    offset: int = -1
    key: str = ""
    raw: bytes
    error: str = Field(min_length=1)
    at: UtcDatetime

    def message_key(self) -> str:
        return self.source_topic
