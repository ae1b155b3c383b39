"""The phase key ``case_metadata_file``: a CSV of each test case's hidden attributes (Assay addition).

The first column is ``case_id``; the others are attributes (age band, sex, camera…) that the server joins
with the per-case rows an evaluation returns, so subgroups come from the host, never the participant.
Checked when the bundle is read, so a host hears about a bad file before any submission is scored.
"""

from __future__ import annotations

import csv
import io

#: Rows and columns a metadata file may hold (as many cases as an evaluation may return rows).
MAX_ROWS = 200_000
MAX_COLUMNS = 64
#: Bytes read to check the file; the server stores it whole.
MAX_BYTES = 64 * 1024**2


def columns(data: bytes, rel: str) -> list[str]:
    """The attribute columns (after ``case_id``) of a file :func:`problems` found nothing wrong with."""
    header = next(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")), None) or []
    return [name.strip() for name in header[1:]]


def problems(data: bytes, rel: str) -> list[str]:
    """What is wrong with the CSV ``data`` of file ``rel`` (empty: nothing), each naming the line."""
    if not rel.lower().endswith(".csv"):
        return [f"{rel!r} must be a .csv file (header row, first column case_id)"]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [f"{rel!r} is not UTF-8 text ({exc.reason} at byte {exc.start})"]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if not header or header[0].strip() != "case_id":
            found = header[:3] if header else "nothing"
            return [f"{rel!r} line 1: the header must start with the column case_id (found {found})"]
        names = [name.strip() for name in header]
        if len(names) > MAX_COLUMNS:
            return [f"{rel!r} line 1: {len(names)} columns; at most {MAX_COLUMNS}"]
        if "" in names or len(set(names)) != len(names):
            return [f"{rel!r} line 1: every column needs a name of its own"]
        seen: set[str] = set()
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            line = reader.line_num
            case_id = record[0].strip()
            if not case_id:
                return [f"{rel!r} line {line}: the case_id is empty"]
            if case_id in seen:
                return [f"{rel!r} line {line}: case_id {case_id!r} appears twice"]
            if len(record) > len(names):
                return [f"{rel!r} line {line}: {len(record)} fields, but the header has {len(names)}"]
            seen.add(case_id)
            if len(seen) > MAX_ROWS:
                return [f"{rel!r}: more than {MAX_ROWS} cases"]
    except csv.Error as exc:
        return [f"{rel!r} line {reader.line_num}: not valid CSV ({exc})"]
    return []
