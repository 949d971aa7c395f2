"""Lead import: the text of a CSV or JSON file in, leads and per-row errors out.

Theory of operation: the file is decoded (UTF-8, with or without a BOM; UTF-16 if it has a BOM)
and split into rows; each row becomes a `Lead` or a `RowError`, and a bad row never stops the
import. Problems with the file as a whole (empty, not UTF-8, malformed JSON, no phone column, too
many rows) are a single error with row 0, or the header's row. Row numbers are the ones a user
sees: in a CSV the header is row 1 (a spreadsheet's numbering), in JSON the 1-based position of
the element in the list.

Numbers are normalised to E.164 with `phonenumbers`, relative to the campaign's default region.
A lead's time zones are the `timezone` column if it has one, else every zone the number may be
in, so the calling window can be required to hold in all of them (DIALING.md: 08:00-21:00 in the
called party's local time). The lead id is `id_prefix` + the E.164 number: importing the same
number again yields the same id, so the store merges instead of duplicating. Rows with the same
number in one file are merged here: later non-empty attribute values win, the highest priority
is kept.

Columns (case-insensitive): `phone` (or `phone_number`, `number`; required), `timezone` (IANA),
`priority` (integer, higher first), `external_id` (or `id`; kept as the `external_id` attribute).
Every other column is a custom attribute, kept as a string.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat, ValidationResult
from phonenumbers.timezone import time_zones_for_number
from phonenumbers.tzdata import TIMEZONE_DATA

from dialer.core.model import Lead

MAX_ROWS = 100_000
MAX_FIELD_CHARS = 256
MAX_PRIORITY = 1_000_000_000

PHONE_COLUMNS = ("phone", "phone_number", "number")  # the first one present is the number
TIMEZONE_COLUMN = "timezone"
PRIORITY_COLUMN = "priority"
EXTERNAL_ID_COLUMNS = ("external_id", "id")
EXTERNAL_ID_ATTRIBUTE = "external_id"

_RAW_CHARS = 200  # how much of a bad row is echoed back in its error
_UNKNOWN_ZONE = "Etc/Unknown"  # what phonenumbers says when it has no zone for a number
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})  # files in the tz database, not zones
_INTEGER = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # as the user sees it; 0 = the file as a whole
    reason: str
    raw: str  # the row's text (clipped), to show next to the reason


@dataclass(frozen=True, slots=True)
class ImportReport:
    leads: tuple[Lead, ...]
    errors: tuple[RowError, ...]
    duplicates_merged: int = 0  # rows folded into an earlier row with the same number


def parse_leads_csv(
    data: str | bytes, *, campaign_id: str, default_region: str, id_prefix: str
) -> ImportReport:
    """Leads from a CSV file whose first row names the columns (`,`, `;` or tab separated)."""
    importer = _Importer(campaign_id, _region(default_region), id_prefix)
    text = _decode(data)
    if isinstance(text, RowError):
        return _failed(text)
    if not text.strip():
        return _failed(RowError(0, "the file is empty", ""))
    items = _csv_records(text)
    # The header is the first row that is not blank; a malformed one ends the import.
    position = next((i for i, (_, item) in enumerate(items) if not _blank(item)), None)
    if position is None:
        return _failed(RowError(0, "the file is empty", ""))
    header_row, header = items[position]
    if isinstance(header, RowError):
        return _failed(header)
    names = [name.strip() for name in header.fields]
    columns = _columns([name for name in names if name])
    if isinstance(columns, str):
        return _failed(RowError(header_row, columns, header.raw))
    data_items = [item for item in items[position + 1:] if not _blank(item[1])]
    if len(data_items) > MAX_ROWS:
        return _failed(_too_many(len(data_items)))
    if not data_items:
        return _failed(RowError(0, "the file has a header but no data rows", ""))
    for row, item in data_items:
        if isinstance(item, RowError):
            importer.errors.append(item)
            continue
        extra = item.fields[len(names):]
        if any(value.strip() for value in extra):
            importer.errors.append(RowError(
                row, f"the row has {len(item.fields)} fields but the header has {len(names)}", item.raw))
            continue
        values = {name: (item.fields[i] if i < len(item.fields) else "")
                  for i, name in enumerate(names) if name}
        problem = importer.add(values, columns)
        if problem is not None:
            importer.errors.append(RowError(row, problem, item.raw))
    return importer.report()


def parse_leads_json(
    data: str | bytes, *, campaign_id: str, default_region: str, id_prefix: str
) -> ImportReport:
    """Leads from a JSON list of objects, or an object `{"leads": [...]}`."""
    importer = _Importer(campaign_id, _region(default_region), id_prefix)
    text = _decode(data)
    if isinstance(text, RowError):
        return _failed(text)
    if not text.strip():
        return _failed(RowError(0, "the file is empty", ""))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        raw = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        return _failed(RowError(0, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                                _clip(raw)))
    except RecursionError:
        return _failed(RowError(0, "malformed JSON: nested too deeply", ""))
    except ValueError as exc:  # e.g. a number with more digits than Python converts
        return _failed(RowError(0, f"malformed JSON: {exc}", ""))
    if isinstance(document, dict) and isinstance(document.get("leads"), list):
        elements: list[object] = document["leads"]
    elif isinstance(document, list):
        elements = document
    else:
        return _failed(RowError(
            0, f'expected a list of lead objects or {{"leads": [...]}}, not {_json_type(document)}',
            _clip(_json_text(document))))
    if len(elements) > MAX_ROWS:
        return _failed(_too_many(len(elements)))
    if not elements:
        return _failed(RowError(0, "the file has no leads", ""))
    objects = no_phone = 0
    for index, element in enumerate(elements, start=1):
        problem = _json_element(importer, element)
        if problem is not None:
            objects += isinstance(element, dict)
            no_phone += problem.startswith("no phone")
            importer.errors.append(RowError(index, problem, _clip(_json_text(element))))
        else:
            objects += 1
    if objects and no_phone == objects:
        # The same mistake in every element is one mistake: say it once.
        return _failed(RowError(0, f"no phone field in any element: expected one of {_phone_names()}", ""))
    return importer.report()


# ---------------------------------------------------------------------------------- rows to leads
@dataclass(frozen=True, slots=True)
class _Columns:
    """Which of a row's columns carry the known fields; the rest are attributes."""

    phone: str
    timezone: str | None
    priority: str | None
    external_id: str | None

    def known(self) -> frozenset[str]:
        return frozenset(n for n in (self.phone, self.timezone, self.priority, self.external_id) if n)


@dataclass(slots=True)
class _Pending:
    """A lead being assembled from one or more rows with the same number."""

    phone: str
    timezones: tuple[str, ...]
    zone_given: bool  # from a timezone column, not guessed from the number
    priority: int
    attributes: dict[str, str]


@dataclass(slots=True)
class _Importer:
    campaign_id: str
    region: str
    id_prefix: str
    pending: dict[str, _Pending] = field(default_factory=dict)  # by E.164 number, in file order
    errors: list[RowError] = field(default_factory=list)
    merged: int = 0

    def add(self, values: Mapping[str, str], columns: _Columns) -> str | None:
        """Adds the row's lead (merging it with an earlier one), or says why the row is rejected."""
        lead = self._read(values, columns)
        if isinstance(lead, str):
            return lead
        earlier = self.pending.get(lead.phone)
        if earlier is None:
            self.pending[lead.phone] = lead
            return None
        self.merged += 1
        earlier.priority = max(earlier.priority, lead.priority)
        for name, value in lead.attributes.items():
            if value or name not in earlier.attributes:
                earlier.attributes[name] = value
        if lead.zone_given or not earlier.zone_given:
            earlier.timezones, earlier.zone_given = lead.timezones, lead.zone_given
        return None

    def _read(self, values: Mapping[str, str], columns: _Columns) -> _Pending | str:
        """The row as a pending lead, or the reason it is rejected."""
        for name, value in values.items():
            if len(value) > MAX_FIELD_CHARS:
                return f"field '{name}' is {len(value)} characters long (limit {MAX_FIELD_CHARS})"
        number = _number(values[columns.phone].strip(), self.region)
        if isinstance(number, str):
            return number
        phone = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        given = values.get(columns.timezone, "").strip() if columns.timezone else ""
        if given:
            zone = _zone_names().get(given.casefold())
            if zone is None:
                return f"unknown time zone '{given}'"
            zones: tuple[str, ...] = (zone,)
        else:
            guessed = _number_zones(number, phone)
            if isinstance(guessed, str):
                return guessed
            zones = guessed
        priority_text = values.get(columns.priority, "").strip() if columns.priority else ""
        priority = 0
        if priority_text:
            if not _INTEGER.fullmatch(priority_text):
                return f"priority '{priority_text}' is not an integer"
            priority = int(priority_text)
            if abs(priority) > MAX_PRIORITY:
                return f"priority {priority} is out of range (-{MAX_PRIORITY} to {MAX_PRIORITY})"
        known = columns.known()
        attributes = {name: value.strip() for name, value in values.items() if name not in known}
        if columns.external_id:
            attributes[EXTERNAL_ID_ATTRIBUTE] = values[columns.external_id].strip()
        return _Pending(phone, zones, bool(given), priority, attributes)

    def report(self) -> ImportReport:
        leads = tuple(
            Lead(id=f"{self.id_prefix}{p.phone}", campaign_id=self.campaign_id, phone=p.phone,
                 timezones=p.timezones, priority=p.priority, attributes=tuple(sorted(p.attributes.items())))
            for p in self.pending.values())
        return ImportReport(leads, tuple(sorted(self.errors, key=lambda e: e.row)), self.merged)


def _columns(names: Sequence[str]) -> _Columns | str:
    """Which names carry the known fields, or the reason the names are unusable."""
    seen: dict[str, str] = {}
    for name in names:
        if len(name) > MAX_FIELD_CHARS:
            return f"column name '{name[:40]}...' is {len(name)} characters long (limit {MAX_FIELD_CHARS})"
        folded = name.casefold()
        if folded in seen:
            return f"column '{name}' appears twice"
        seen[folded] = name

    def first(candidates: Sequence[str]) -> str | None:
        return next((seen[c] for c in candidates if c in seen), None)

    phone = first(PHONE_COLUMNS)
    if phone is None:
        found = ", ".join(names) if names else "none"
        return f"no phone column: expected one of {_phone_names()}; found {found}"
    return _Columns(phone, first((TIMEZONE_COLUMN,)), first((PRIORITY_COLUMN,)), first(EXTERNAL_ID_COLUMNS))


def _number(text: str, region: str) -> PhoneNumber | str:
    """The parsed number, or why it is not one."""
    if not text:
        return "the phone number is empty"
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        return f"'{text}' is not a phone number ({_parse_problem(exc)})"
    if phonenumbers.is_valid_number(number):
        return number
    # The region the number claims (its country code), not the default one, unless it has none.
    where = phonenumbers.region_code_for_country_code(number.country_code or 0)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        return f"'{text}' is not a possible number for region {where} ({_length_problem(possible)})"
    return f"'{text}' is not a valid number for region {where}"


def _parse_problem(exc: NumberParseException) -> str:
    match exc.error_type:
        case NumberParseException.INVALID_COUNTRY_CODE:
            return "no valid country code"
        case NumberParseException.TOO_SHORT_NSN | NumberParseException.TOO_SHORT_AFTER_IDD:
            return "too short"
        case NumberParseException.TOO_LONG:
            return "too long"
        case _:
            return "no digits in the right places"


def _length_problem(result: int) -> str:
    match result:
        case ValidationResult.TOO_SHORT:
            return "too short"
        case ValidationResult.TOO_LONG:
            return "too long"
        case ValidationResult.INVALID_COUNTRY_CODE:
            return "invalid country code"
        case _:
            return "wrong length"


def _number_zones(number: PhoneNumber, phone: str) -> tuple[str, ...] | str:
    """Every zone the number may be in (all of them must be in the window), or why none is known."""
    zones = tuple(z for z in time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    if not zones:
        # No zone for the number itself: take the whole country's zones, to be safe in each.
        zones = tuple(z for z in TIMEZONE_DATA.get(str(number.country_code), ()) if z != _UNKNOWN_ZONE)
    if not zones:
        return f"no time zone is known for {phone}: add a timezone column"
    known = _zone_names()
    for zone in zones:
        if zone.casefold() not in known:
            return f"time zone '{zone}' of {phone} is not in this system's tz database: add a timezone column"
    return zones


@cache
def _zone_names() -> dict[str, str]:
    """Canonical IANA names by case-folded name (so "america/new_york" is accepted)."""
    return {name.casefold(): name for name in zoneinfo.available_timezones() - _NOT_ZONES}


def _phone_names() -> str:
    return ", ".join(PHONE_COLUMNS)


# ------------------------------------------------------------------------------- files to rows
@dataclass(frozen=True, slots=True)
class _Record:
    fields: list[str]
    raw: str


def _csv_records(text: str) -> list[tuple[int, _Record | RowError]]:
    """Every record of the file, numbered from 1 like a spreadsheet's rows."""
    lines = io.StringIO(text, newline="").readlines()
    first = next((line for line in lines if line.strip()), "")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first), strict=True)
    items: list[tuple[int, _Record | RowError]] = []
    row, line = 0, 0
    while True:
        row += 1
        try:
            fields = next(reader)
        except StopIteration:
            return items
        except csv.Error as exc:
            raw = _clip("".join(lines[line:reader.line_num]).rstrip("\r\n"))
            if reader.line_num >= len(lines) and "end of data" in str(exc):
                reason = f"malformed CSV: the quoted field on line {line + 1} is never closed"
            else:
                reason = f"malformed CSV on line {reader.line_num}: {exc}"
            items.append((row, RowError(row, reason, raw)))
        else:
            items.append((row, _Record(fields, _clip("".join(lines[line:reader.line_num]).rstrip("\r\n")))))
        line = reader.line_num


def _delimiter(header: str) -> str:
    """`,` unless the header line holds more `;` or tabs (spreadsheets in many locales)."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _blank(item: _Record | RowError) -> bool:
    return isinstance(item, _Record) and not any(f.strip() for f in item.fields)


def _json_element(importer: _Importer, element: object) -> str | None:
    """Adds the element's lead, or says why the element is rejected."""
    if not isinstance(element, dict):
        return f"element is not an object but {_json_type(element)}"
    values = _json_values(element)
    if isinstance(values, str):
        return values
    columns = _columns(list(values))
    if isinstance(columns, str):
        return columns
    return importer.add(values, columns)


def _json_values(element: Mapping[str, object]) -> dict[str, str] | str:
    """The object's fields as strings, or why one cannot be a string."""
    values: dict[str, str] = {}
    for key, value in element.items():
        name = key.strip()
        if not name:
            continue
        match value:
            case None:
                text = ""
            case bool():
                text = "true" if value else "false"
            case str() | int() | float():
                text = str(value)
            case _:
                return f"field '{name}' must be a string or a number, not {_json_type(value)}"
        if name in values:
            return f"field '{name}' appears twice"
        values[name] = text
    return values


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int() | float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "a list"
        case _:
            return "an object"


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


# ----------------------------------------------------------------------------------- the file
def _decode(data: str | bytes) -> str | RowError:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    # UTF-16 with a BOM is what spreadsheets save as "Unicode text"; the BOM gives the byte order.
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return RowError(0, f"the file is not {encoding.upper().removesuffix('-SIG')} text: byte "
                           f"0x{data[exc.start]:02x} on line {line} (offset {exc.start}) cannot be decoded; "
                           "save it as UTF-8", "")


def _region(default_region: str) -> str:
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {default_region!r}: expected a code such as 'US' or 'GB'")
    return region


def _too_many(count: int) -> RowError:
    return RowError(0, f"the file has {count} rows (limit {MAX_ROWS}): split it into smaller files", "")


def _failed(error: RowError) -> ImportReport:
    return ImportReport((), (error,), 0)


def _clip(text: str) -> str:
    return text if len(text) <= _RAW_CHARS else text[:_RAW_CHARS] + "…"
