"""Typed result records: what each kind of record holds, checked when read, serialised when written.

Three kinds of record share one envelope (``schema``, ``kind``, ``created``, ``protocol``,
``defense``, ``seed``):

* :class:`AttackRecord` (kind ``attack``): one attack on one trained model, with the data set,
  model, code and environment it ran on, its timings, metrics and sanity checks;
* :class:`AnalysisRecord` (kind ``analysis_<name>``, e.g. ``analysis_rsa``): one analysis of a
  trained model; its metrics are free-form (each analysis and figure reads its own);
* :class:`ModelSummary` (kind ``model_summary``, ``summary.json`` beside a model's attack
  records): the per-example worst case over every attack and every check of the model.

``to_dict()`` gives the JSON the harness writes, key for key and in the same order;
``from_dict(data, path)`` checks every field a reader needs and raises a :class:`RecordError`
that names the file and the field. Parts that no reader interprets (the resolved protocol
config, the data set, model, code, environment and timings descriptions, the numbers of a
check, an analysis's metrics) stay plain JSON dicts.

A record whose ``schema`` is not :data:`SCHEMA_VERSION` is refused: a newer one needs a newer
harness, an older one must be recomputed.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

from bench.errors import BenchError

SCHEMA_VERSION = 1
PACKAGE = "simbench-robustness"

ATTACK = "attack"
MODEL_SUMMARY = "model_summary"
ANALYSIS_PREFIX = "analysis_"


class RecordError(BenchError):
    """A record that cannot be read: unreadable, of another schema or kind, missing a field, or with values that
    contradict each other. ``reason``: what is wrong, without the file's name or the advice."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def utc_now() -> str:
    """A record's ``created`` time: UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- checking fields ---------------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_bits(v: Any) -> bool:
    return isinstance(v, str) and not v.strip("01")


STR = (lambda v: isinstance(v, str), "a string")
INT = (_is_int, "an integer")
NUMBER = (_is_number, "a number")
BOOL = (lambda v: isinstance(v, bool), "true or false")
OBJECT = (lambda v: isinstance(v, dict), "an object")
LIST = (lambda v: isinstance(v, list), "a list")
BITS = (_is_bits, "a string of 0s and 1s")
ANY = (lambda v: True, "any value")


def nullable(kind: tuple[Callable[[Any], bool], str]) -> tuple[Callable[[Any], bool], str]:
    test, text = kind
    return (lambda v: v is None or test(v)), f"{text} or null"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Fields:
    """The fields of one JSON object of a record, each read with its type checked.

    Errors name the record file and the field's dotted path (``metrics.robust_accuracy.0.1``).
    """

    def __init__(self, data: Any, path: Path | str, where: str = "", what: str = "result"):
        self.path, self.where, self.what = path, where, what
        if not isinstance(data, dict):
            raise self.error(f"{self._name_of(None)} is {_shown(data)}, not an object")
        self.data: dict[str, Any] = data

    def _name_of(self, key: str | None) -> str:
        if key is None:
            return f"field {self.where!r}" if self.where else "its content"
        return f"field {self._path(key)!r}"

    def error(self, problem: str) -> RecordError:
        return RecordError(f"record {self.path}: {problem}; it is not a valid {self.what} record "
                           "(rerun the command that wrote it: it moves the file aside and recomputes it)", problem)

    def get(self, key: str, kind=ANY, optional: bool = False) -> Any:
        """The value of ``key``, of ``kind``; ``None`` when ``optional`` and absent."""
        if key not in self.data:
            if optional:
                return None
            raise self.error(f"{self._name_of(key)} is missing")
        value = self.data[key]
        test, text = kind
        if not test(value):
            raise self.error(f"{self._name_of(key)} is {_shown(value)}, expected {text}")
        return value

    def sub(self, key: str, null: bool = False) -> Fields | None:
        """The object under ``key`` as :class:`Fields`; with ``null``, ``None`` when it is null (never when absent)."""
        value = self.get(key, nullable(OBJECT) if null else OBJECT)
        return None if value is None else Fields(value, self.path, self._path(key), self.what)

    def items(self, key: str, kind) -> dict[str, Any]:
        """An object of ``kind`` values (an eps -> accuracy table, say), each checked."""
        sub = self.sub(key)
        return {k: sub.get(k, kind) for k in sub.data}

    def objects(self, key: str) -> list[Fields]:
        """A list of objects, each as :class:`Fields` (``checks.3``)."""
        values = self.get(key, LIST)
        return [Fields(v, self.path, f"{self._path(key)}.{i}", self.what) for i, v in enumerate(values)]

    def strings(self, key: str) -> tuple[str, ...]:
        values = self.get(key, LIST)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.error(f"{self._name_of(f'{key}.{i}')} is {_shown(v)}, expected a string")
        return tuple(values)

    def numbers(self, key: str) -> tuple[float, ...]:
        values = self.get(key, LIST)
        for i, v in enumerate(values):
            if not _is_number(v):
                raise self.error(f"{self._name_of(f'{key}.{i}')} is {_shown(v)}, expected a number")
        return tuple(values)

    def rest(self, known: Iterable[str]) -> dict[str, Any]:
        """The fields not in ``known``, in their order (kept as written)."""
        known = set(known)
        return {k: v for k, v in self.data.items() if k not in known}

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key


def _json(value: Any) -> Any:
    """A deep copy of a free-form JSON part, so that a record's ``to_dict()`` never aliases it."""
    return copy.deepcopy(value)


# --- parts -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ProtocolRef:
    """The protocol a record was measured under: its name and the hash of its resolved config."""

    name: str
    hash: str

    @property
    def short_hash(self) -> str:
        """The 12 characters of the hash in folder names and reports."""
        return self.hash[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "hash": self.hash}

    @classmethod
    def from_fields(cls, f: Fields) -> ProtocolRef:
        return cls(f.get("name", STR), f.get("hash", STR))


@dataclass(frozen=True)
class ProtocolInfo(ProtocolRef):
    """The protocol in full: also its version, source file and the resolved config (free-form)."""

    version: Any
    source: str | None
    config: dict[str, Any]

    def ref(self) -> ProtocolRef:
        return ProtocolRef(self.name, self.hash)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": _json(self.version), "hash": self.hash, "source": self.source,
                "config": _json(self.config)}

    @classmethod
    def from_fields(cls, f: Fields) -> ProtocolInfo:
        return cls(f.get("name", STR), f.get("hash", STR), f.get("version"), f.get("source", nullable(STR)),
                   f.get("config", OBJECT))


SHIPPED_REFERENCE = "shipped_reference"  # set in memory only, when references are read beside a user's runs


@dataclass(frozen=True)
class DefenseInfo:
    """A defense as ``Defense.describe()`` gives it; ``extra``: what a defense adds (``target``, ``simulated``)."""

    name: str
    params: dict[str, Any]
    base: str | None
    randomized: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def simulated(self) -> bool:
        """Trained on a simulated target (neural_sim without recordings)."""
        return bool(self.extra.get("simulated", False))

    @property
    def shipped_reference(self) -> bool:
        """Read from the shipped references beside a user's own runs (``bench report --with-references``)."""
        return bool(self.extra.get(SHIPPED_REFERENCE, False))

    @property
    def user_model(self) -> bool:
        """A network trained elsewhere (``bench eval``, ``bench.evaluate``), not a defense of the harness."""
        return self.extra.get("origin") == "user"

    @property
    def label(self) -> str:
        """The defense as reports show it: its base for input transformations, SIMULATED when the target is,
        [reference] when it is a shipped reference shown beside the user's runs."""
        label = self.name + (f"({self.base})" if self.base else "")
        return label + (" [simulated V1]" if self.simulated else "") + (" [reference]" if self.shipped_reference else "")

    def as_shipped_reference(self) -> DefenseInfo:
        return replace(self, extra={**self.extra, SHIPPED_REFERENCE: True})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": _json(self.params), "base": self.base, "randomized": self.randomized,
                **_json(self.extra)}

    @classmethod
    def from_fields(cls, f: Fields) -> DefenseInfo:
        f.get("simulated", BOOL, optional=True)
        return cls(f.get("name", STR), f.get("params", OBJECT), f.get("base", nullable(STR)), f.get("randomized", BOOL),
                   f.rest(("name", "params", "base", "randomized")))

    @classmethod
    def from_dict(cls, data: Any, path: Path | str) -> DefenseInfo:
        return cls.from_fields(Fields(data, path, "defense"))


@dataclass(frozen=True)
class AttackInfo:
    """An attack as ``Attack.describe()`` gives it, with the eps grid it ran on and its surrogate (transfer attacks)."""

    name: str
    threat_model: str
    kind: str  # "budget" | "minimal"
    needs_gradients: bool
    params: dict[str, Any]
    eps: tuple[float, ...]
    surrogate: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    KNOWN: ClassVar[tuple[str, ...]] = ("name", "threat_model", "kind", "needs_gradients", "params", "eps", "surrogate")

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "threat_model": self.threat_model, "kind": self.kind, "needs_gradients": self.needs_gradients,
               "params": _json(self.params), **_json(self.extra), "eps": list(self.eps)}
        if self.surrogate is not None:
            out["surrogate"] = _json(self.surrogate)
        return out

    @classmethod
    def from_fields(cls, f: Fields) -> AttackInfo:
        return cls(f.get("name", STR), f.get("threat_model", STR), f.get("kind", STR), f.get("needs_gradients", BOOL),
                   f.get("params", OBJECT), f.numbers("eps"), f.get("surrogate", OBJECT, optional=True), f.rest(cls.KNOWN))

    @classmethod
    def from_dict(cls, data: Any, path: Path | str) -> AttackInfo:
        return cls.from_fields(Fields(data, path, "attack"))


@dataclass(frozen=True)
class Check:
    """One sanity check: ``status`` "pass" or "flag", a sentence, and its figures (``numbers``, free-form:
    ``threat_model`` and ``violations`` for cross-attack checks, ``attack`` in a summary's attack checks)."""

    name: str
    status: str
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def threat_model(self) -> str | None:
        return self.numbers.get("threat_model")

    @property
    def attack(self) -> str | None:
        """The attack a summary's per-attack check came from."""
        return self.numbers.get("attack")

    def with_numbers(self, **numbers: Any) -> Check:
        return Check(self.name, self.status, self.detail, {**self.numbers, **numbers})

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, **_json(self.numbers)}

    @classmethod
    def from_fields(cls, f: Fields) -> Check:
        return cls(f.get("name", STR), f.get("status", STR), f.get("detail", STR), f.rest(("name", "status", "detail")))

    @classmethod
    def from_dict(cls, data: Any, path: Path | str = "<check>") -> Check:
        return cls.from_fields(Fields(data, path, "check"))


def flags(checks: Iterable[Check]) -> list[str]:
    """The names of the checks that did not pass, in order."""
    return [c.name for c in checks if not c.passed]


@dataclass(frozen=True)
class TopK:
    """Top-5 accuracy and the mean reciprocal rank of the true class."""

    top5: float
    mrr: float

    def to_dict(self) -> dict[str, Any]:
        return {"top5": self.top5, "mrr": self.mrr}

    @classmethod
    def from_fields(cls, f: Fields) -> TopK:
        return cls(f.get("top5", NUMBER), f.get("mrr", NUMBER))


@dataclass(frozen=True)
class RankMetrics:
    clean: TopK
    adversarial: dict[str, TopK]  # eps (as written, "0.1") -> under attack at that eps

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean.to_dict(), "adversarial": {eps: r.to_dict() for eps, r in self.adversarial.items()}}

    @classmethod
    def from_fields(cls, f: Fields) -> RankMetrics:
        adversarial = f.sub("adversarial")
        return cls(TopK.from_fields(f.sub("clean")), {eps: TopK.from_fields(adversarial.sub(eps)) for eps in adversarial.data})


@dataclass(frozen=True)
class MinimalPerturbation:
    """Minimal attacks: the median minimal perturbation (``None`` where the median example is unbroken)."""

    median: float | None
    median_sq_per_dim: float | None
    n_broken: int
    n_unbroken: int

    def to_dict(self) -> dict[str, Any]:
        return {"median": self.median, "median_sq_per_dim": self.median_sq_per_dim, "n_broken": self.n_broken,
                "n_unbroken": self.n_unbroken}

    @classmethod
    def from_fields(cls, f: Fields) -> MinimalPerturbation:
        return cls(f.get("median", nullable(NUMBER)), f.get("median_sq_per_dim", nullable(NUMBER)), f.get("n_broken", INT),
                   f.get("n_unbroken", INT))


@dataclass(frozen=True)
class PerExample:
    """Per example, "1" if classified correctly: clean, and under attack at each eps (worst case over eps' <= eps)."""

    clean: str
    robust: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"clean": self.clean, "robust": dict(self.robust)}

    @classmethod
    def from_fields(cls, f: Fields) -> PerExample:
        return cls(f.get("clean", BITS), f.items("robust", BITS))


@dataclass(frozen=True)
class AttackMetrics:
    """What an attack measured; eps keys are written as ``f"{eps:g}"``."""

    n_examples: int
    curve: str | None  # how the eps grid was attacked (absent from early schema-1 records)
    clean_accuracy: float
    robust_accuracy: dict[str, float]
    independent_accuracy: dict[str, float]
    rank: RankMetrics
    minimal_perturbation: MinimalPerturbation | None
    per_example: PerExample

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"n_examples": self.n_examples}
        if self.curve is not None:
            out["curve"] = self.curve
        out.update({
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": dict(self.robust_accuracy),
            "independent_accuracy": dict(self.independent_accuracy),
            "rank": self.rank.to_dict(),
            "minimal_perturbation": None if self.minimal_perturbation is None else self.minimal_perturbation.to_dict(),
            "per_example": self.per_example.to_dict(),
        })
        return out

    @classmethod
    def from_fields(cls, f: Fields) -> AttackMetrics:
        minimal = f.sub("minimal_perturbation", null=True)  # null for budget attacks
        return cls(f.get("n_examples", INT), f.get("curve", STR, optional=True), f.get("clean_accuracy", NUMBER),
                   f.items("robust_accuracy", NUMBER), f.items("independent_accuracy", NUMBER), RankMetrics.from_fields(f.sub("rank")),
                   None if minimal is None else MinimalPerturbation.from_fields(minimal), PerExample.from_fields(f.sub("per_example")))


@dataclass(frozen=True)
class WorstCase:
    """At one eps of one threat model: the accuracy when an example counts as robust only if it survived
    every attack that evaluated it there."""

    accuracy: float
    n_examples: int
    attacks: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "n_examples": self.n_examples, "attacks": list(self.attacks)}

    @classmethod
    def from_fields(cls, f: Fields) -> WorstCase:
        return cls(f.get("accuracy", NUMBER), f.get("n_examples", INT), f.strings("attacks"))


@dataclass(frozen=True)
class AnalysisInfo:
    """Which analysis ran (``rsa``, ``filters``), its parameters and the paper it follows (free-form)."""

    name: str
    params: dict[str, Any]
    reference: Any

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": _json(self.params), "reference": _json(self.reference)}

    @classmethod
    def from_fields(cls, f: Fields) -> AnalysisInfo:
        return cls(f.get("name", STR), f.get("params", OBJECT), f.get("reference"))


# --- records -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record(ABC):
    """The envelope of every record: when it was written, and the protocol, defense and seed of its model."""

    created: str
    protocol: ProtocolRef
    defense: DefenseInfo
    seed: int

    KIND: ClassVar[str] = ""
    WHAT: ClassVar[str] = "result"

    @property
    def kind(self) -> str:
        return self.KIND

    def _head(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION, "kind": self.kind, "created": self.created, "protocol": self.protocol.to_dict(),
                "defense": self.defense.to_dict(), "seed": self.seed}

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON the harness writes, key for key."""

    @classmethod
    def accepts(cls, kind: str) -> bool:
        return kind == cls.KIND

    @classmethod
    def _fields(cls, data: Any, path: Path | str) -> Fields:
        """The record's fields, after its schema and kind are checked."""
        kind = check_header(data, path)
        if not cls.accepts(kind):
            raise RecordError(f"record {path} is of kind {kind!r}, not a {cls.WHAT} record")
        return Fields(data, path, what=cls.WHAT)

    @classmethod
    @abstractmethod
    def from_dict(cls, data: Any, path: Path | str) -> Record:
        """The typed record of ``data`` read from ``path``, every field it needs checked."""


@dataclass(frozen=True)
class _ModelRecord(Record):
    """The envelope of a record of a trained model: also the data set, model, code and environment (free-form)."""

    protocol: ProtocolInfo
    dataset: dict[str, Any]
    model: dict[str, Any]
    code: dict[str, Any]
    environment: dict[str, Any]
    timings: dict[str, Any]

    def _tail(self) -> dict[str, Any]:
        return {"dataset": _json(self.dataset), "model": _json(self.model), "code": _json(self.code),
                "environment": _json(self.environment)}

    @staticmethod
    def _envelope(f: Fields) -> dict[str, Any]:
        return {"created": f.get("created", STR), "protocol": ProtocolInfo.from_fields(f.sub("protocol")),
                "defense": DefenseInfo.from_fields(f.sub("defense")), "seed": f.get("seed", INT),
                "dataset": f.get("dataset", OBJECT), "model": f.get("model", OBJECT), "code": f.get("code", OBJECT),
                "environment": f.get("environment", OBJECT), "timings": f.get("timings", OBJECT)}


@dataclass(frozen=True)
class AttackRecord(_ModelRecord):
    """One attack on one trained model: ``<results>/<protocol>-<hash12>/<defense>/seed<N>/<attack>.json``."""

    attack: AttackInfo
    metrics: AttackMetrics
    checks: tuple[Check, ...]

    KIND: ClassVar[str] = ATTACK
    WHAT: ClassVar[str] = "attack"

    @property
    def flags(self) -> list[str]:
        """The names of this record's flagged checks."""
        return flags(self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "attack": self.attack.to_dict(), **self._tail(), "timings": _json(self.timings),
                "metrics": self.metrics.to_dict(), "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Any, path: Path | str) -> AttackRecord:
        f = cls._fields(data, path)
        return cls(**cls._envelope(f), attack=AttackInfo.from_fields(f.sub("attack")),
                   metrics=AttackMetrics.from_fields(f.sub("metrics")), checks=tuple(Check.from_fields(c) for c in f.objects("checks")))


@dataclass(frozen=True)
class AnalysisRecord(_ModelRecord):
    """One analysis of one trained model: ``<results>/.../seed<N>/analysis_<name>.json``; ``metrics`` is the
    analysis's own (free-form: each figure reads what it draws)."""

    analysis: AnalysisInfo
    metrics: dict[str, Any]

    WHAT: ClassVar[str] = "analysis"

    @property
    def kind(self) -> str:
        return ANALYSIS_PREFIX + self.analysis.name

    @classmethod
    def accepts(cls, kind: str) -> bool:
        return kind.startswith(ANALYSIS_PREFIX) and len(kind) > len(ANALYSIS_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "analysis": self.analysis.to_dict(), **self._tail(), "timings": _json(self.timings),
                "metrics": _json(self.metrics)}

    @classmethod
    def from_dict(cls, data: Any, path: Path | str) -> AnalysisRecord:
        f = cls._fields(data, path)
        record = cls(**cls._envelope(f), analysis=AnalysisInfo.from_fields(f.sub("analysis")), metrics=f.get("metrics", OBJECT))
        if record.kind != f.data["kind"]:
            raise f.error(f"field 'analysis.name' is {record.analysis.name!r} but the kind is {f.data['kind']!r}")
        return record


@dataclass(frozen=True)
class ModelSummary(Record):
    """One model's ``summary.json``: the worst case over its attacks and every check (``bench.evaluation.aggregate``)."""

    attacks: tuple[str, ...]  # the attack records it was computed from, by attack name, sorted
    worst_case: dict[str, dict[str, WorstCase]]  # threat model -> eps -> worst case
    cross_attack_checks: tuple[Check, ...]
    attack_checks: tuple[Check, ...]  # every attack record's checks, each with its ``attack``

    KIND: ClassVar[str] = MODEL_SUMMARY
    WHAT: ClassVar[str] = "model summary"

    def to_dict(self) -> dict[str, Any]:
        return {**self._head(), "attacks": list(self.attacks),
                "worst_case": {t: {eps: w.to_dict() for eps, w in by_eps.items()} for t, by_eps in self.worst_case.items()},
                "cross_attack_checks": [c.to_dict() for c in self.cross_attack_checks],
                "attack_checks": [c.to_dict() for c in self.attack_checks]}

    @classmethod
    def from_dict(cls, data: Any, path: Path | str) -> ModelSummary:
        f = cls._fields(data, path)
        worst = f.sub("worst_case")
        by_threat = {}
        for threat in worst.data:
            by_eps = worst.sub(threat)
            by_threat[threat] = {eps: WorstCase.from_fields(by_eps.sub(eps)) for eps in by_eps.data}
        return cls(f.get("created", STR), ProtocolRef.from_fields(f.sub("protocol")), DefenseInfo.from_fields(f.sub("defense")),
                   f.get("seed", INT), f.strings("attacks"), by_threat,
                   tuple(Check.from_fields(c) for c in f.objects("cross_attack_checks")),
                   tuple(Check.from_fields(c) for c in f.objects("attack_checks")))


def record_class(kind: str) -> type[Record] | None:
    """The class of records of ``kind`` (``analysis_<name>`` for every analysis); ``None`` for an unknown kind."""
    return next((cls for cls in (AttackRecord, ModelSummary, AnalysisRecord) if cls.accepts(kind)), None)


def check_header(data: Any, path: Path | str) -> str:
    """The kind of a record's JSON, after refusing other schemas and unknown kinds with what to do about them."""
    if not isinstance(data, dict):
        raise RecordError(f"record {path} is not a JSON object; it is not a result record of this harness")
    if "schema" not in data:
        raise RecordError(f"record {path} has no schema version: it was not written by this harness, or by a version "
                          f"before schema {SCHEMA_VERSION}; this version reads schema {SCHEMA_VERSION} only "
                          "(delete it and rerun to recompute it)")
    schema = data["schema"]
    if not _is_int(schema):
        raise RecordError(f"record {path} has schema {_shown(schema)}, not a version number; this version reads schema "
                          f"{SCHEMA_VERSION}")
    if schema > SCHEMA_VERSION:
        raise RecordError(f"record {path} was written by a newer version of the harness (schema {schema}); this version "
                          f"reads schema {SCHEMA_VERSION}: upgrade {PACKAGE}")
    if schema < SCHEMA_VERSION:
        raise RecordError(f"record {path} was written by an older version of the harness (schema {schema}); this version "
                          f"reads schema {SCHEMA_VERSION} only: delete it and rerun to recompute it")
    kind = data.get("kind")
    if not isinstance(kind, str):
        raise RecordError(f"record {path} has no kind" if kind is None else f"record {path} has kind {_shown(kind)}, not a name")
    if record_class(kind) is None:
        raise RecordError(f"record {path} is of unknown kind {kind!r}; this version reads "
                          f"{ATTACK}, {MODEL_SUMMARY} and {ANALYSIS_PREFIX}<name> records")
    return kind


def record_from_dict(data: Any, path: Path | str) -> Record:
    """The typed record of a record's JSON: :class:`AttackRecord`, :class:`AnalysisRecord` or :class:`ModelSummary`."""
    return record_class(check_header(data, path)).from_dict(data, path)
