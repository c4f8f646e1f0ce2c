"""Lambda handlers for kesm's e2e suite, run by awslambdaric under the Lambda Runtime
Interface Emulator (tests/e2e/lambda_runtimes_e2e_test.cc).

`decode` reads each event through three aws-lambda-powertools APIs, each on its own, and
appends what each decoded to the file named by KESM_LAMBDA_OUT, one JSON line per record
and API; bytes are hex, a library error is kept as text. `raising` raises while the file
KESM_LAMBDA_RAISE_FLAG exists, and logs the offsets of each invocation first. `partial`
processes each record with powertools' BatchProcessor(EventType.Kafka) and answers its partial
batch response: a record whose value holds "fail-once" fails the first time it is seen (the
records already failed are listed in the file KESM_LAMBDA_FAILED), and every record is logged
with the invocation's request id and whether it failed.
"""

import json
import os

from aws_lambda_powertools.shared.functions import decode_header_bytes
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.kafka import ConsumerRecords, kafka_consumer
from aws_lambda_powertools.utilities.parser.models import KafkaRecordModel, KafkaSelfManagedEventModel


def _hex(data):
    if data is None:
        return None
    if isinstance(data, str):
        # Text a library decoded: back to the bytes it came from.
        data = data.encode("utf-8", "surrogatepass")
    return bytes(data).hex()


def _name(name):
    # A header name as the runtime holds it (a str), as UTF-8 bytes; kesm's escape rule for
    # non-UTF-8 names is undone by the test.
    return name.encode("utf-8", "surrogatepass").hex()


def _error(exc):
    return f"{type(exc).__name__}: {exc}"[:300]


def _attempt(line, field, read):
    try:
        line[field] = read()
    except Exception as exc:  # noqa: BLE001 - a library's error is what the test looks at
        line[field + "_error"] = _error(exc)


def _write(lines):
    with open(os.environ["KESM_LAMBDA_OUT"], "a", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, separators=(",", ":")) + "\n")


def _base(api, topic, partition, offset):
    return {"api": api, "topic": topic, "partition": partition, "offset": offset}


def _headers_list(raw_headers):
    # Every header in order, duplicates kept, each value through powertools' own decoder.
    out = []
    for chunk in raw_headers:
        for name, value in chunk.items():
            try:
                out.append([_name(name), _hex(decode_header_bytes(value))])
            except Exception as exc:  # noqa: BLE001
                out.append([_name(name), None, _error(exc)])
    return out


def _dataclass_lines(event, context):
    """KafkaEvent's records (KafkaEventRecord) as the BatchProcessor hands them over."""
    lines = []

    def record_handler(record):
        line = _base("dataclass", record.topic, record.partition, record.offset)
        _attempt(line, "key", lambda: _hex(record.decoded_key))
        _attempt(line, "value", lambda: _hex(record.decoded_value))
        _attempt(line, "headers", lambda: _headers_list(record.headers))
        lines.append(line)

    processor = BatchProcessor(event_type=EventType.Kafka)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return lines, response


def _pydantic_lines(event):
    """powertools' pydantic Kafka model, one record at a time (one bad record would fail the
    whole event model)."""
    lines = []
    envelope = dict(event)
    envelope["records"] = {}
    try:
        KafkaSelfManagedEventModel.model_validate(envelope)
        envelope_error = None
    except Exception as exc:  # noqa: BLE001
        envelope_error = _error(exc)
    for records in event["records"].values():
        for raw in records:
            line = _base("pydantic", raw.get("topic"), raw.get("partition"), raw.get("offset"))
            if envelope_error:
                line["envelope_error"] = envelope_error
            try:
                model = KafkaRecordModel.model_validate(json.loads(json.dumps(raw)))
            except Exception as exc:  # noqa: BLE001
                line["record_error"] = _error(exc)
                lines.append(line)
                continue
            line["key"] = _hex(model.key)
            line["value"] = _hex(model.value)
            line["headers"] = [[_name(k), _hex(v)] for h in model.headers for k, v in h.items()]
            lines.append(line)
    return lines


def _consumer_records_lines(event, context):
    """powertools' Kafka consumer utility (kafka_consumer / ConsumerRecords)."""
    lines = []

    @kafka_consumer
    def consume(records: ConsumerRecords, _context):
        for record in records.records:
            line = _base("consumer_records", record.topic, record.partition, record.offset)
            _attempt(line, "key", lambda: _hex(record.key))
            _attempt(line, "value", lambda: _hex(record.value))
            lines.append(line)

    consume(json.loads(json.dumps(event)), context)
    return lines


def decode(event, context):
    lines, response = _dataclass_lines(event, context)
    lines += _pydantic_lines(event)
    lines += _consumer_records_lines(event, context)
    _write(lines)
    return response


def raising(event, context):
    lines = []
    for records in event["records"].values():
        for raw in records:
            lines.append(_base("raising", raw["topic"], raw["partition"], raw["offset"]))
    raise_now = os.path.exists(os.environ["KESM_LAMBDA_RAISE_FLAG"])
    for line in lines:
        line["raised"] = raise_now
    _write(lines)
    if raise_now:
        raise RuntimeError("kesm e2e: the raising handler raises while its flag file exists")
    return {"processed": len(lines)}


_invocations = [0]


def partial(event, context):
    # The request id, and a count in case an emulator reuses ids.
    _invocations[0] += 1
    invocation = f"{context.aws_request_id}#{_invocations[0]}"
    failed_file = os.environ["KESM_LAMBDA_FAILED"]
    with open(failed_file, encoding="utf-8") as f:
        failed_before = set(f.read().split())
    lines = []

    def record_handler(record):
        ident = f"{record.topic}-{record.partition}-{record.offset}"
        value = record.decoded_value.decode("utf-8")
        fail = "fail-once" in value and ident not in failed_before
        lines.append(
            {
                "api": "partial",
                "invocation": invocation,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "failed": fail,
            }
        )
        if fail:
            with open(failed_file, "a", encoding="utf-8") as f:
                f.write(ident + "\n")
            raise ValueError(f"kesm e2e: {ident} fails once")

    processor = BatchProcessor(event_type=EventType.Kafka)
    try:
        # Raises BatchProcessingError when every record failed: the whole batch failed.
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        lines.sort(key=lambda line: (line["partition"], line["offset"]))
        _write(lines)
