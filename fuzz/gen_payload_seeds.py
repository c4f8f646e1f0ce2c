#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/payload/ in payload_fuzz.cc's input format."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "payload")


def str8(b):
    assert len(b) < 256
    return bytes([len(b)]) + b


def str16(b):
    return struct.pack("<H", len(b)) + b


def record(topic=0, partition=0, offset=0, ts=0, tstype=0, key=None, value=None,
           headers=(), topic_bytes=None, large=False):
    flags = (1 if key is not None else 0) | (2 if value is not None else 0)
    flags |= (4 if topic_bytes is not None else 0) | (tstype << 3) | (32 if large else 0)
    out = bytes([flags])
    out += str8(topic_bytes) if topic_bytes is not None else bytes([topic])
    out += bytes([partition]) + struct.pack("<qq", offset, ts)
    if key is not None:
        out += str8(key)
    if value is not None:
        out += str16(value) if large else str8(value)
    out += bytes([len(headers)])
    for name, val in headers:
        out += bytes([1 if val is not None else 0]) + str8(name)
        if val is not None:
            out += str8(val)
    return out


SEEDS = {
    "plain": str8(b"b1:9092,b2:9092") + record(key=b"k", value=b"hello", ts=1545084650987,
                                               headers=[(b"h", b"hi")]),
    "null-and-empty": str8(b"b:9092") + record(offset=1, key=b"", value=None,
                                               headers=[(b"n", None), (b"e", b"")])
    + record(offset=2, key=None, value=b""),
    "non-utf8": str8(b"b") + record(key=b"\xff\xfe\x80\xc0\x00", value=b"\xed\xa0\x80",
                                    headers=[(b"\xff\xfe", b"\x00\xff"),
                                             (b"\xee\xbe\x80", b"x"),
                                             (b"caf\xc3\xa9", None)]),
    "escapes": str8(b"odd\\\"\x02") + record(topic_bytes=b"t\"\\\n\x01-1", partition=3,
                                            key=b"\"\\\n\t\x1f\x7f", value=b"{\"a\":1}",
                                            headers=[(b"q\"b\\c\n", b"\"\\")]),
    "partitions": str8(b"b") + b"".join(
        record(topic=i % 4, partition=i % 3, offset=i, tstype=i % 3, value=bytes([i]))
        for i in range(12)),
    "large-value": str8(b"b") + record(value=bytes(range(256)) * 16, large=True),
    "negative-numbers": str8(b"") + record(offset=-1, ts=-9223372036854775808, key=b"k"),
    # A real event body, for the raw-body half of the target (parseLambdaKafkaEvent).
    "event.json": b'{"eventSource":"SelfManagedKafka","bootstrapServers":"b:9092","records":'
    b'{"t-0":[{"topic":"t","partition":0,"offset":1,"timestamp":2,"timestampType":"CREATE_TIME",'
    b'"key":"aw==","value":"","headers":[{"h":[104,105]},{"n":null},{"\\uefff":[0,255]}]}]}}',
}

for name, data in SEEDS.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
