"""The audit's data: vendored benchmark files (offline), their hashes, and the user's CSV.

Vendored files live in ``assets/data`` with their licence and source (see ``assets/data/SOURCES.md``).
Every loader returns plain Python records; the user's CSV gets a clear :class:`InputError` for each
way it can be wrong (missing, empty, not CSV, not UTF-8, too big, wrong columns).
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bertdemo.atomic import sha256_file
from bertdemo.config import ASSETS_DIR
from bertdemo.csvfile import read_csv
from bertdemo.errors import InputError

DATA_DIR = ASSETS_DIR / "data"
CROWS_PAIRS_FILE = DATA_DIR / "crows_pairs" / "crows_pairs_anonymized.csv"
STEREOSET_FILE = DATA_DIR / "stereoset" / "dev_intrasentence.json"
NAMES_FILE = DATA_DIR / "names" / "names.json"
CLASSIFIER_TEMPLATES_FILE = DATA_DIR / "templates" / "classifier_eec_style.json"
MLM_PROBES_FILE = DATA_DIR / "templates" / "mlm_probes.json"


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(f"{what} data file is missing: {path} (it ships in the repository under assets/data)")
    return path


# ---- CrowS-Pairs -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrowsPair:
    id: str
    sent_more: str
    sent_less: str
    direction: str  # "stereo" or "antistereo"
    bias_type: str


@lru_cache(maxsize=4)
def load_crows_pairs(path: str | Path = CROWS_PAIRS_FILE) -> tuple[CrowsPair, ...]:
    """The 1,508 CrowS-Pairs rows (Nangia et al. 2020), in file order."""
    p = _require(Path(path), "CrowS-Pairs")
    pairs = []
    with open(p, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            pairs.append(CrowsPair(id=row.get("") or str(len(pairs)), sent_more=row["sent_more"], sent_less=row["sent_less"],
                                   direction=row["stereo_antistereo"], bias_type=row["bias_type"]))
    return tuple(pairs)


# ---- StereoSet ---------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def load_stereoset(path: str | Path = STEREOSET_FILE) -> tuple[dict[str, Any], ...]:
    """StereoSet dev intrasentence examples: ``{id, target, bias_type, context, sentences: [...]}``."""
    p = _require(Path(path), "StereoSet")
    with open(p, encoding="utf-8") as f:
        doc = json.load(f)
    return tuple(doc["data"]["intrasentence"])


# ---- names and templates -----------------------------------------------------------------------
@lru_cache(maxsize=4)
def load_json(path: str | Path) -> dict[str, Any]:
    with open(_require(Path(path), Path(path).stem), encoding="utf-8") as f:
        return json.load(f)


# ---- the user's CSV ----------------------------------------------------------------------------
@dataclass
class UserData:
    """A validated user CSV: texts, optional labels (as given), and one or more group columns."""

    path: str
    sha256: str
    text_col: str
    label_col: str | None
    group_cols: list[str]
    texts: list[str]
    labels: list[str] | None
    groups: dict[str, list[str]] = field(default_factory=dict)
    total_rows: int = 0

    def __len__(self) -> int:
        return len(self.texts)


MISSING_GROUP = "(missing)"


def load_user_csv(path: str | os.PathLike[str] | None, text_col: str = "text", label_col: str | None = None,
                  group_cols: list[str] | None = None, max_bytes: int = 5_000_000, max_rows: int = 20_000,
                  max_chars: int = 5000) -> UserData:
    """Read and check the user's CSV; every problem is an :class:`InputError` naming the fix."""
    if path is None or str(path).strip() == "":
        raise InputError("no file given; pass a CSV with --data", field="data")
    table = read_csv(path, "data", max_bytes, max_rows)
    if not group_cols:
        raise InputError("give at least one group column with --group-col (e.g. --group-col gender)", field="group_col")
    p, name = Path(path), table.name
    wanted = [text_col, *([label_col] if label_col else []), *group_cols]
    missing = [c for c in dict.fromkeys(wanted) if c not in table.columns]
    if missing:
        shown = ", ".join(repr(c) for c in table.columns[:20])
        raise InputError(f"{name} has no column {', '.join(repr(m) for m in missing)}; its columns are: {shown}",
                         field="data")
    column = {c: [r[c] for r in table.rows] for c in dict.fromkeys(wanted)}
    texts = [t.strip() for t in column[text_col]]
    empty = [i + 2 for i, t in enumerate(texts) if not t]
    if empty:
        raise InputError(f"column {text_col!r} is empty on line(s) {', '.join(map(str, empty[:10]))}", field="data")
    long = [i + 2 for i, t in enumerate(texts) if len(t) > max_chars]
    if long:
        raise InputError(f"column {text_col!r} is longer than {max_chars:,} characters on line(s) "
                         f"{', '.join(map(str, long[:10]))}", field="data")
    labels = None
    if label_col:
        labels = [v.strip() for v in column[label_col]]
        blank = [i + 2 for i, v in enumerate(labels) if not v]
        if blank:
            raise InputError(f"column {label_col!r} is empty on line(s) {', '.join(map(str, blank[:10]))}", field="data")
    groups = {g: [v.strip() or MISSING_GROUP for v in column[g]] for g in group_cols}
    return UserData(path=str(p), sha256=sha256_file(p), text_col=text_col, label_col=label_col, group_cols=list(group_cols),
                    texts=texts, labels=labels, groups=groups, total_rows=len(table))
