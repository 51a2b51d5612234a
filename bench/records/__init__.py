"""Records: self-describing, atomically written JSON results."""

from bench.records.environment import code_version, environment
from bench.records.store import SCHEMA_VERSION, iter_records, read_record, record_path, summary_path, write_json_atomic

__all__ = ["SCHEMA_VERSION", "code_version", "environment", "iter_records", "read_record", "record_path", "summary_path", "write_json_atomic"]
