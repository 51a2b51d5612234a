"""Records: self-describing, atomically written JSON results, read and written as typed objects."""

from bench.records.environment import code_version, environment
from bench.records.schema import (SCHEMA_VERSION, AnalysisRecord, AttackRecord, Check, DefenseInfo, ModelSummary, ProtocolInfo,
                                  ProtocolRef, Record, RecordError, WorstCase)
from bench.records.store import (iter_records, iter_records_in, read_record, record_path, summary_path, write_json_atomic,
                                 write_record)

__all__ = ["SCHEMA_VERSION", "AnalysisRecord", "AttackRecord", "Check", "DefenseInfo", "ModelSummary", "ProtocolInfo",
           "ProtocolRef", "Record", "RecordError", "WorstCase", "code_version", "environment", "iter_records", "iter_records_in",
           "read_record", "record_path", "summary_path", "write_json_atomic", "write_record"]
