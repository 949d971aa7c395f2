from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from dialer.core.leads import (
    MAX_FIELD_CHARS,
    MAX_ROWS,
    ImportReport,
    RowError,
    parse_leads_csv,
    parse_leads_json,
)
from dialer.core.model import Lead, LeadState

Parse = Callable[..., ImportReport]


def csv_import(data: str | bytes, region: str = "US") -> ImportReport:
    return parse_leads_csv(data, campaign_id="c1", default_region=region, id_prefix="c1:")


def json_import(data: str | bytes, region: str = "US") -> ImportReport:
    return parse_leads_json(data, campaign_id="c1", default_region=region, id_prefix="c1:")


def only_error(report: ImportReport) -> RowError:
    assert report.leads == ()
    assert len(report.errors) == 1
    return report.errors[0]


# ------------------------------------------------------------------------------------------ CSV
def test_a_good_csv_row_becomes_a_ready_lead_in_e164_with_its_zone_and_attributes() -> None:
    report = csv_import("phone,last_name,first_name,priority\n(212) 555-0123,Doe,Jane,7\n")
    assert report.errors == ()
    assert report.duplicates_merged == 0
    assert report.leads == (Lead(
        id="c1:+12125550123", campaign_id="c1", phone="+12125550123", timezones=("America/New_York",),
        priority=7, attributes=(("first_name", "Jane"), ("last_name", "Doe")), state=LeadState.READY),)


@pytest.mark.parametrize("column", ["phone", "Phone", "PHONE", "number", "phone_number", " phone "])
def test_the_phone_column_has_several_accepted_names(column: str) -> None:
    report = csv_import(f"{column},name\n2125550123,Ann\n")
    assert [lead.phone for lead in report.leads] == ["+12125550123"]
    assert report.leads[0].attributes == (("name", "Ann"),)


def test_phone_wins_over_number_which_is_then_an_attribute() -> None:
    report = csv_import("number,phone\n42,2125550123\n")
    assert report.leads[0].phone == "+12125550123"
    assert report.leads[0].attributes == (("number", "42"),)


@pytest.mark.parametrize(
    ("header", "value", "expected"),
    [("external_id", "crm-1", "crm-1"), ("id", "crm-2", "crm-2"), ("ID", " crm-3 ", "crm-3")],
)
def test_an_external_id_is_kept_as_an_attribute_and_the_lead_id_comes_from_the_number(
    header: str, value: str, expected: str
) -> None:
    lead = csv_import(f"phone,{header}\n2125550123,{value}\n").leads[0]
    assert lead.id == "c1:+12125550123"
    assert lead.attribute("external_id") == expected


def test_the_same_number_written_differently_maps_to_the_same_lead_id() -> None:
    first = csv_import("phone\n(212) 555-0123\n").leads[0]
    again = json_import('[{"phone": "+1 212-555-0123"}]').leads[0]
    assert first.id == again.id == "c1:+12125550123"


def test_a_number_with_a_country_code_ignores_the_default_region() -> None:
    lead = csv_import("phone\n+44 20 7946 0958\n").leads[0]
    assert lead.phone == "+442079460958"
    assert lead.timezones == ("Europe/London",)


def test_the_default_region_reads_national_numbers() -> None:
    lead = csv_import("phone\n020 7946 0958\n", region="GB").leads[0]
    assert lead.phone == "+442079460958"


def test_an_unknown_default_region_is_a_misuse_of_the_api() -> None:
    with pytest.raises(ValueError, match="unknown default region 'XX'"):
        csv_import("phone\n2125550123\n", region="XX")


def test_a_timezone_column_overrides_the_zones_of_the_number() -> None:
    report = csv_import("phone,timezone\n2125550123,America/Chicago\n2125550124,america/denver\n")
    assert [lead.timezones for lead in report.leads] == [("America/Chicago",), ("America/Denver",)]


def test_an_empty_timezone_falls_back_to_the_number() -> None:
    assert csv_import("phone,timezone\n2125550123,\n").leads[0].timezones == ("America/New_York",)


def test_a_number_spanning_two_zones_keeps_both_as_candidates() -> None:
    lead = csv_import("phone\n208 555 0123\n").leads[0]  # Idaho: Mountain and Pacific
    assert lead.timezones == ("America/Boise", "America/Los_Angeles")


def test_a_number_without_a_known_zone_needs_a_timezone_column() -> None:
    report = csv_import("phone,timezone\n+800 1234 5678,\n+800 1234 5679,Europe/Paris\n")
    assert report.errors == (RowError(2, "no time zone is known for +80012345678: add a timezone column",
                                      "+800 1234 5678,"),)
    assert report.leads[0].timezones == ("Europe/Paris",)


@pytest.mark.parametrize(
    "data",
    [
        "\ufeffphone,name\n2125550123,Ann\n",
        b"\xef\xbb\xbfphone,name\n2125550123,Ann\n",
        "phone,name\r\n2125550123,Ann\r\n",
        "phone,name\n2125550123,Ann\n".encode("utf-16"),
        "phone;name\n2125550123;Ann\n",
        "phone\tname\n2125550123\tAnn\n",
        "\n\nphone,name\n2125550123,Ann\n",
    ],
    ids=["str-bom", "utf8-bom", "crlf", "utf16", "semicolon", "tab", "leading-blank-lines"],
)
def test_common_csv_dialects_and_encodings_are_read(data: str | bytes) -> None:
    report = csv_import(data)
    assert report.errors == ()
    assert [(lead.phone, lead.attributes) for lead in report.leads] == [("+12125550123", (("name", "Ann"),))]


def test_bad_rows_are_reported_with_row_number_while_good_rows_are_kept() -> None:
    data = (
        "phone,name,priority,timezone\n"  # row 1
        "2125550123,Ann,1,\n"  # 2: good
        "12,Short,,\n"  # 3: not a possible number
        "2125550124,Bob,high,\n"  # 4: priority
        "\n"  # 5: blank, skipped
        "2125550125,Cy,,Mars/Olympus\n"  # 6: zone
        "+44 6000 000000,Di,,\n"  # 7: not valid (a UK number, though the default region is US)
        ",Ed,,\n"  # 8: no number
        "hello,Flo,,\n"  # 9: not a number at all
        "2125550127,Gus,,,surplus\n"  # 10: too many fields
        "2125550128,Hal\n"  # 11: good, trailing columns missing
    )
    report = csv_import(data)
    assert [lead.phone for lead in report.leads] == ["+12125550123", "+12125550128"]
    assert report.errors == (
        RowError(3, "'12' is not a possible number for region US (too short)", "12,Short,,"),
        RowError(4, "priority 'high' is not an integer", "2125550124,Bob,high,"),
        RowError(6, "unknown time zone 'Mars/Olympus'", "2125550125,Cy,,Mars/Olympus"),
        RowError(7, "'+44 6000 000000' is not a valid number for region GB", "+44 6000 000000,Di,,"),
        RowError(8, "the phone number is empty", ",Ed,,"),
        RowError(9, "'hello' is not a phone number (no digits in the right places)", "hello,Flo,,"),
        RowError(10, "the row has 5 fields but the header has 4", "2125550127,Gus,,,surplus"),
    )


def test_a_row_with_trailing_empty_fields_is_accepted() -> None:
    report = csv_import("phone,name\n2125550123,Ann,,\n")
    assert report.errors == ()
    assert len(report.leads) == 1


def test_a_quoted_field_spanning_lines_counts_as_one_row() -> None:
    report = csv_import('phone,note\n2125550123,"two\nlines"\nnope,x\n')
    assert report.leads[0].attribute("note") == "two\nlines"
    assert [error.row for error in report.errors] == [3]  # the spreadsheet's row, not the text line


@pytest.mark.parametrize(
    ("priority", "expected"), [("", 0), ("0", 0), ("5", 5), ("+5", 5), ("-3", -3), (" 12 ", 12)],
)
def test_priority_is_an_integer_defaulting_to_zero(priority: str, expected: int) -> None:
    assert csv_import(f"phone,priority\n2125550123,{priority}\n").leads[0].priority == expected


@pytest.mark.parametrize(
    ("priority", "reason"),
    [
        ("1.5", "priority '1.5' is not an integer"),
        ("1_000", "priority '1_000' is not an integer"),
        ("\u0663", "priority '\u0663' is not an integer"),  # an Arabic-Indic digit: int() would take it
        ("99999999999", "priority 99999999999 is out of range (-1000000000 to 1000000000)"),
    ],
)
def test_a_priority_that_is_not_a_reasonable_integer_is_a_row_error(priority: str, reason: str) -> None:
    assert only_error(csv_import(f"phone,priority\n2125550123,{priority}\n")).reason == reason


def test_duplicate_numbers_are_merged_into_one_lead() -> None:
    data = (
        "phone,name,city,priority\n"
        "2125550123,Ann,,3\n"
        "2125550199,Bob,Albany,1\n"
        "+1 (212) 555-0123,Ann Smith,NYC,1\n"
        "212.555.0123,,Brooklyn,\n"
    )
    report = csv_import(data)
    assert report.duplicates_merged == 2
    assert [lead.phone for lead in report.leads] == ["+12125550123", "+12125550199"]  # first seen order
    ann = report.leads[0]
    assert ann.priority == 3  # the highest
    assert ann.attributes == (("city", "Brooklyn"), ("name", "Ann Smith"))  # later non-empty values win


def test_a_later_duplicate_with_a_timezone_sets_the_zone() -> None:
    report = csv_import("phone,timezone\n2125550123,\n2125550123,America/Chicago\n2125550123,\n")
    assert report.leads[0].timezones == ("America/Chicago",)


def test_an_over_long_field_is_a_row_error() -> None:
    ok, long = "x" * MAX_FIELD_CHARS, "x" * (MAX_FIELD_CHARS + 1)
    report = csv_import(f"phone,notes\n2125550123,{ok}\n2125550124,{long}\n")
    assert len(report.leads) == 1
    assert report.errors[0].row == 3
    assert report.errors[0].reason == "field 'notes' is 257 characters long (limit 256)"
    assert report.errors[0].raw.endswith("…")  # the raw text is clipped


def test_too_many_rows_rejects_the_file() -> None:
    data = "phone\n" + "2125550123\n" * (MAX_ROWS + 1)
    error = only_error(csv_import(data))
    assert (error.row, error.reason) == (
        0, "the file has 100001 rows (limit 100000): split it into smaller files")


@pytest.mark.parametrize("data", ["", "   \n", "\ufeff", b"", b"\xef\xbb\xbf", "\n,,\n"])
def test_an_empty_csv_file_is_one_clear_error(data: str | bytes) -> None:
    assert only_error(csv_import(data)) == RowError(0, "the file is empty", "")


def test_a_csv_with_only_a_header_says_so() -> None:
    assert only_error(csv_import("phone,name\n")).reason == "the file has a header but no data rows"


def test_a_missing_phone_column_is_one_error_on_the_header_row() -> None:
    error = only_error(csv_import("name,email\nAnn,a@example.org\nBob,b@example.org\n"))
    assert error == RowError(
        1, "no phone column: expected one of phone, phone_number, number; found name, email", "name,email")


def test_a_repeated_column_name_is_one_error_on_the_header_row() -> None:
    error = only_error(csv_import("phone,Name,name\n2125550123,a,b\n"))
    assert (error.row, error.reason) == (1, "column 'name' appears twice")


def test_an_unterminated_quote_is_reported_and_the_rows_before_it_are_kept() -> None:
    report = csv_import('phone,name\n2125550123,Ann\n2125550124,"Bob\n2125550125,Cy\n')
    assert [lead.phone for lead in report.leads] == ["+12125550123"]
    assert report.errors == (RowError(
        3, "malformed CSV: the quoted field on line 3 is never closed", '2125550124,"Bob\n2125550125,Cy'),)


def test_a_stray_quote_is_a_row_error_and_the_next_rows_are_read() -> None:
    report = csv_import('phone,name\n2125550123,"Ann"x\n2125550124,Bob\n')
    assert [lead.phone for lead in report.leads] == ["+12125550124"]
    assert [(e.row, e.reason) for e in report.errors] == [
        (2, "malformed CSV on line 2: ',' expected after '\"'")]


def test_a_malformed_header_ends_the_import() -> None:
    error = only_error(csv_import('phone,"name\n2125550123,Ann\n'))
    assert error.row == 1
    assert "never closed" in error.reason


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"phone,name\n2125550123,Andr\xe9\n",
         "the file is not UTF-8 text: byte 0xe9 on line 2 (offset 26) cannot be decoded; save it as UTF-8"),
        (b"\xff\xfe\x00\xd8",
         "the file is not UTF-16 text: byte 0x00 on line 1 (offset 2) cannot be decoded; save it as UTF-8"),
    ],
)
def test_bytes_that_are_not_utf8_reject_the_file_with_a_clear_reason(data: bytes, reason: str) -> None:
    assert only_error(csv_import(data)) == RowError(0, reason, "")


# ----------------------------------------------------------------------------------------- JSON
def test_json_may_be_a_list_or_an_object_with_a_leads_list() -> None:
    rows = [{"phone": "2125550123", "name": "Ann"}]
    for data in (json.dumps(rows), json.dumps({"leads": rows}), json.dumps(rows).encode()):
        report = json_import(data)
        assert report.errors == ()
        assert [(lead.phone, lead.attributes) for lead in report.leads] == [
            ("+12125550123", (("name", "Ann"),))]


def test_json_values_of_any_scalar_type_become_strings() -> None:
    data = '[{"Number": 2125550123, "age": 42, "score": 0.5, "vip": true, "notes": null, "priority": 2}]'
    lead = json_import(data).leads[0]
    assert lead.phone == "+12125550123"
    assert lead.priority == 2
    assert lead.attributes == (("age", "42"), ("notes", ""), ("score", "0.5"), ("vip", "true"))


def test_bad_json_elements_are_reported_by_position_while_good_ones_are_kept() -> None:
    data = json.dumps([
        {"phone": "2125550123"},  # 1
        "2125550124",  # 2
        {"phone": "2125550125", "tags": ["a"]},  # 3
        {"phone": "2125550126", "priority": "soon"},  # 4
        {"name": "no phone"},  # 5
        {"phone": "2125550127", "timezone": "Nowhere/Town"},  # 6
        {"phone": "2125550128", "Phone": "2125550129"},  # 7
        {"phone": "2125550130", "id": 9},  # 8
    ])
    report = json_import(data)
    assert [lead.phone for lead in report.leads] == ["+12125550123", "+12125550130"]
    assert report.leads[1].attribute("external_id") == "9"
    assert [(e.row, e.reason) for e in report.errors] == [
        (2, "element is not an object but a string"),
        (3, "field 'tags' must be a string or a number, not a list"),
        (4, "priority 'soon' is not an integer"),
        (5, "no phone column: expected one of phone, phone_number, number; found name"),
        (6, "unknown time zone 'Nowhere/Town'"),
        (7, "column 'Phone' appears twice"),
    ]
    assert report.errors[0].raw == '"2125550124"'


def test_json_duplicates_are_merged() -> None:
    data = json.dumps([{"phone": "2125550123", "a": "1", "priority": 1},
                       {"phone": "+12125550123", "a": "", "b": "2", "priority": 4}])
    report = json_import(data)
    assert report.duplicates_merged == 1
    assert (report.leads[0].priority, report.leads[0].attributes) == (4, (("a", "1"), ("b", "2")))


def test_malformed_json_reports_line_and_column() -> None:
    error = only_error(json_import('[\n  {"phone": "2125550123",}\n]'))
    assert error.row == 0
    assert error.reason == (
        "malformed JSON at line 2 column 26: Expecting property name enclosed in double quotes")
    assert error.raw == '  {"phone": "2125550123",}'


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("", "the file is empty"),
        (b"  ", "the file is empty"),
        ("[]", "the file has no leads"),
        ('{"leads": []}', "the file has no leads"),
        ('{"phone": "2125550123"}', 'expected a list of lead objects or {"leads": [...]}, not an object'),
        ('"2125550123"', 'expected a list of lead objects or {"leads": [...]}, not a string'),
        ("[" * 100_000, "malformed JSON: nested too deeply"),
        (b"[{\"phone\": \"\xe9\"}]",
         "the file is not UTF-8 text: byte 0xe9 on line 1 (offset 12) cannot be decoded; save it as UTF-8"),
        ('[{"phone": ' + "9" * 5000 + "}]", None),
        ('[{"a": 1}, {"b": 2}]',
         "no phone field in any element: expected one of phone, phone_number, number"),
    ],
)
def test_json_file_level_problems_are_one_clear_error(data: str | bytes, reason: str | None) -> None:
    report = json_import(data)
    if reason is None:  # a number too long for Python to convert: still no crash
        assert report.errors[0].row == 0
        assert report.errors[0].reason.startswith("malformed JSON")
    else:
        assert only_error(report) == RowError(0, reason, report.errors[0].raw)


def test_json_with_too_many_elements_rejects_the_file() -> None:
    data = "[" + ",".join(["{}"] * (MAX_ROWS + 1)) + "]"
    assert only_error(json_import(data)).reason.startswith("the file has 100001 rows")


def test_json_over_long_value_is_a_row_error() -> None:
    report = json_import(json.dumps([{"phone": "2125550123", "bio": "y" * 300}]))
    assert only_error(report) == RowError(1, "field 'bio' is 300 characters long (limit 256)",
                                          report.errors[0].raw)


@pytest.mark.parametrize("parse", [parse_leads_csv, parse_leads_json])
def test_every_lead_belongs_to_the_campaign_and_starts_ready(parse: Parse) -> None:
    data = "phone\n2125550123\n" if parse is parse_leads_csv else '[{"phone": "2125550123"}]'
    lead = parse(data, campaign_id="spring", default_region="us", id_prefix="spring:").leads[0]
    assert (lead.id, lead.campaign_id, lead.state, lead.attempts, lead.next_at) == (
        "spring:+12125550123", "spring", LeadState.READY, 0, 0.0)
