"""A small HTTP client for the dialer server's API, for the `dialer` command line.

Synchronous (urllib, no proxies: the server is usually on loopback), one timeout per request,
and every failure is a `ClientError` whose text is one line a user can act on:

    cannot reach the dialer server at http://127.0.0.1:18080: is `dialer serve` running?
    campaign 'spring' already exists                 (a 4xx: the server's own message)

Requests carry the API token (`Authorization: Bearer`) when one is given.

Lead files are uploaded in chunks of whole rows, so a large file shows progress and is never
refused for its size. Each chunk is a valid file of its own (the CSV header plus some rows, or a
JSON list of some elements); the server numbers the rows of a chunk, and `import_lead_file`
maps those numbers back to the rows of the file the user has.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from dialer.errors import DialerError

JsonObject = dict[str, Any]
LeadFormat = Literal["csv", "json"]

DEFAULT_TIMEOUT = 120.0  # seconds per request; parsing a chunk of leads takes well under one
DEFAULT_CHUNK_ROWS = 2000

_CONTENT_TYPES: dict[LeadFormat, str] = {"csv": "text/csv; charset=utf-8",
                                         "json": "application/json"}


class ClientError(DialerError):
    """Talking to the dialer server failed; the message is one line for the user."""


class ServerUnreachable(ClientError):
    """Nothing answers at the server's address (or the connection broke)."""


class ApiRequestError(ClientError):
    """The server refused the request: its status, stable error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class LeadFileRejected(ClientError):
    """The lead file as a whole is unusable (no phone column, not UTF-8, malformed JSON...)."""


def check_base_url(url: str) -> str:
    """The server's base URL without a trailing slash, or a ClientError saying what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ClientError(f"the dialer server's URL must look like http://HOST:PORT, got {url!r}")
    if parts.query or parts.fragment:
        raise ClientError(f"the dialer server's URL must not have a query or fragment: {url!r}")
    return url.strip().rstrip("/")


# ----------------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class RowProblem:
    """One rejected row: its number as the user sees it (0 = the file as a whole) and why."""

    row: int
    reason: str
    raw: str = ""  # the row's text in the file, when the client knows it


@dataclass(frozen=True, slots=True)
class ImportBatch:
    """The server's report on one upload of leads."""

    received: int
    added: int
    merged: int
    rejected: int
    errors: tuple[RowProblem, ...]


@dataclass(slots=True)
class ImportSummary:
    """The report on a whole lead file, its rows numbered as in the file."""

    received: int = 0
    added: int = 0
    merged: int = 0
    errors: list[RowProblem] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)


@dataclass(frozen=True, slots=True)
class DncRejection:
    index: int  # position in the list of numbers sent, from 0
    number: str
    reason: str


@dataclass(frozen=True, slots=True)
class DncAddResult:
    added: int  # numbers newly put on the list (already listed ones are not counted)
    rejected: tuple[DncRejection, ...]


@dataclass(frozen=True, slots=True)
class DncStatus:
    number: str  # as normalised (E.164) by the server
    listed: bool


# ------------------------------------------------------------------------------------ client
class DialerClient:
    """The dialer server's HTTP API, one method per call the CLI makes."""

    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT,
                 token: str | None = None) -> None:
        self.base_url = check_base_url(base_url)
        self.timeout = timeout
        self._token = token.strip() if token else None
        # No proxy: a proxy from the environment must not see (or break) loopback requests.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # campaigns
    def create_campaign(self, body: bytes, content_type: str) -> JsonObject:
        return self._ok("POST", "/campaigns", body=body, content_type=content_type)

    def list_campaigns(self) -> list[JsonObject]:
        campaigns = self._ok("GET", "/campaigns").get("campaigns")
        if not isinstance(campaigns, list) or not all(isinstance(c, dict) for c in campaigns):
            raise self._unexpected("GET /campaigns", "no list of campaigns")
        return campaigns

    def campaign(self, campaign_id: str) -> JsonObject:
        return self._ok("GET", f"/campaigns/{_seg(campaign_id)}")

    def start_campaign(self, campaign_id: str) -> JsonObject:
        return self._ok("POST", f"/campaigns/{_seg(campaign_id)}/start")

    def pause_campaign(self, campaign_id: str) -> JsonObject:
        return self._ok("POST", f"/campaigns/{_seg(campaign_id)}/pause")

    # leads
    def import_leads(self, campaign_id: str, body: bytes, content_type: str) -> ImportBatch:
        """One upload. A 422 whose body is a report (every row rejected) is a report too."""
        path = f"/campaigns/{_seg(campaign_id)}/leads"
        status, data = self._request("POST", path, body=body, content_type=content_type)
        if status == 200 or (status == 422 and "errors" in data and "error" not in data):
            try:
                return ImportBatch(
                    received=int(data["received"]), added=int(data["added"]),
                    merged=int(data["merged"]), rejected=int(data["rejected"]),
                    errors=tuple(RowProblem(int(e["row"]), str(e["reason"])) for e in data["errors"]))
            except (KeyError, TypeError, ValueError):
                raise self._unexpected(f"POST {path}", "a malformed import report") from None
        raise self._refused(status, data)

    # DNC
    def dnc_add(self, numbers: Sequence[str], campaign: str | None = None) -> DncAddResult:
        """Adds the numbers; the ones the server cannot read come back as rejections."""
        body: JsonObject = {"numbers": list(numbers)}
        if campaign is not None:
            body["campaign"] = campaign
        status, data = self._request("POST", "/dnc", body=json.dumps(body).encode(),
                                     content_type="application/json")
        if status == 200 or (status == 422 and "rejected" in data and "error" not in data):
            try:
                return DncAddResult(int(data["added"]), tuple(
                    DncRejection(int(r["index"]), str(r["number"]), str(r["reason"]))
                    for r in data["rejected"]))
            except (KeyError, TypeError, ValueError):
                raise self._unexpected("POST /dnc", "a malformed DNC report") from None
        raise self._refused(status, data)

    def dnc_check(self, number: str, campaign: str | None = None) -> DncStatus:
        query = f"?{urlencode({'campaign': campaign})}" if campaign else ""
        data = self._ok("GET", f"/dnc/{_seg(number)}{query}")
        return DncStatus(str(data.get("number", number)), data.get("dnc") is True)

    # IVR flows
    def ivr_flows(self) -> JsonObject:
        return self._ok("GET", "/ivr/flows")

    def ivr_reload(self) -> tuple[bool, JsonObject]:
        """(went live, the server's report); a refused reload (409) carries the diagnostics."""
        status, data = self._request("POST", "/ivr/flows/reload")
        if status == 409 and isinstance(data.get("errors"), list):
            return False, data
        if 200 <= status < 300:
            return True, data
        raise self._refused(status, data)

    # plumbing
    def _ok(self, method: str, path: str, *, body: bytes | None = None,
            content_type: str | None = None) -> JsonObject:
        status, data = self._request(method, path, body=body, content_type=content_type)
        if 200 <= status < 300:
            return data
        raise self._refused(status, data)

    def _request(self, method: str, path: str, *, body: bytes | None = None,
                 content_type: str | None = None) -> tuple[int, JsonObject]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if content_type is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.base_url + path, data=body, method=method,
                                         headers=headers)
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, raw = int(response.status), response.read()
        except urllib.error.HTTPError as exc:  # a 4xx or 5xx: the body says why
            with exc:
                status, raw = exc.code, exc.read()
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._unreachable(exc) from None
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise self._unexpected(f"{method} {path}", f"HTTP {status} and a body that is not JSON") \
                from None
        if not isinstance(data, dict):
            raise self._unexpected(f"{method} {path}", f"HTTP {status} and no JSON object")
        return status, data

    def _unreachable(self, reason: object) -> ClientError:
        if isinstance(reason, TimeoutError):
            return ServerUnreachable(f"the dialer server at {self.base_url} did not answer within "
                                     f"{self.timeout:g} s")
        if isinstance(reason, ConnectionRefusedError):
            return ServerUnreachable(f"cannot reach the dialer server at {self.base_url}: "
                                     "is `dialer serve` running?")
        detail = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        return ServerUnreachable(f"cannot reach the dialer server at {self.base_url} ({detail}): "
                                 "is `dialer serve` running?")

    def _refused(self, status: int, data: JsonObject) -> ClientError:
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            code, message = str(error.get("code", "")), str(error["message"])
        else:
            code, message = "", f"HTTP {status}"
        if status >= 500:
            return ApiRequestError(status, code, f"the dialer server failed (HTTP {status}): {message}")
        if status == 401:
            hint = "give a token with --token or DIALER_TOKEN" if self._token is None \
                else "check the token given with --token or DIALER_TOKEN"
            return ApiRequestError(status, code, f"{message} ({hint})")
        return ApiRequestError(status, code, message)

    def _unexpected(self, what: str, got: str) -> ClientError:
        return ClientError(f"unexpected answer from {self.base_url} to {what}: {got} "
                           "(is it the dialer server?)")


def _seg(value: str) -> str:
    """One path segment, percent-encoded (a number's `+`, a slash in an id)."""
    return quote(value, safe="")


# -------------------------------------------------------------------------- lead file upload
@dataclass(frozen=True, slots=True)
class LeadChunk:
    """One upload: a file of its own, and where its rows come from in the user's file."""

    body: bytes
    content_type: str
    # rows[i] is the file row of the chunk's row i + first_row; None: the rows are the file's.
    rows: tuple[int, ...] | None
    first_row: int  # the chunk's number for its first data row (2 after a CSV header, 1 in JSON)
    raws: tuple[str, ...] = ()
    header_row: int | None = None  # a CSV chunk's header, as numbered in the file

    def file_row(self, row: int) -> int:
        if self.rows is None or row == 0:
            return row
        if self.header_row is not None and row == 1:
            return self.header_row
        index = row - self.first_row
        return self.rows[index] if 0 <= index < len(self.rows) else row

    def raw(self, row: int) -> str:
        if self.rows is None or not self.raws:
            return ""
        index = row - self.first_row
        return self.raws[index] if 0 <= index < len(self.raws) else ""

    def file_level(self, row: int) -> bool:
        """An error about the file as a whole: row 0, or the CSV header."""
        return row == 0 or (self.header_row is not None and row == 1)


@dataclass(frozen=True, slots=True)
class LeadFile:
    format: LeadFormat
    chunks: tuple[LeadChunk, ...]
    rows: int  # data rows, as far as the client can tell (0 if it cannot read the file)


def lead_format(name: str) -> LeadFormat | None:
    lower = name.lower()
    if lower.endswith((".csv", ".txt", ".tsv")):
        return "csv"
    if lower.endswith(".json"):
        return "json"
    return None


def split_lead_file(data: bytes, fmt: LeadFormat, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> LeadFile:
    """The file as uploads of at most `chunk_rows` rows each. A file the client cannot read
    (not UTF-8, malformed JSON, no rows) is sent whole: the server says what is wrong with it."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    whole = LeadFile(fmt, (LeadChunk(data, _CONTENT_TYPES[fmt], None, 1),), 0)
    text = _decode(data)
    if text is None:
        return whole
    split = _split_csv(text, chunk_rows) if fmt == "csv" else _split_json(text, chunk_rows)
    return split if split is not None else whole


def import_lead_file(client: DialerClient, campaign_id: str, lead_file: LeadFile,
                     progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Uploads every chunk; the summary's rows are numbered as in the file. Raises
    `LeadFileRejected` when the file as a whole is unusable (nothing is imported then)."""
    summary = ImportSummary()
    done = 0
    whole_chunk_problems: list[str] = []  # one per chunk whose every row had the same problem
    single = len(lead_file.chunks) == 1
    for chunk in lead_file.chunks:
        try:
            batch = client.import_leads(campaign_id, chunk.body, chunk.content_type)
        except ClientError as exc:
            if done:
                raise ClientError(f"{exc} ({_imported(done, lead_file.rows)})") from None
            raise
        file_level = [e for e in batch.errors if chunk.file_level(e.row)]
        if file_level and (single or chunk.header_row is not None):
            problem = file_level[0]
            where = "" if problem.row == 0 else f"row {chunk.file_row(problem.row)}: "
            after = f" ({_imported(done, lead_file.rows)})" if done else ""
            raise LeadFileRejected(f"{where}{problem.reason}{after}")
        summary.added += batch.added
        summary.merged += batch.merged
        if file_level and chunk.rows is not None:
            # The same problem with every row of this chunk (e.g. no phone field in any of its
            # JSON elements): say it of each row, as if the file had been sent whole.
            reason = file_level[0].reason
            whole_chunk_problems.append(reason)
            summary.errors.extend(RowProblem(row, reason, chunk.raws[i] if chunk.raws else "")
                                  for i, row in enumerate(chunk.rows))
        else:
            summary.errors.extend(RowProblem(chunk.file_row(e.row), e.reason, chunk.raw(e.row))
                                  for e in batch.errors)
        if chunk.rows is None:
            summary.received += batch.received
        else:
            summary.received += len(chunk.rows)
        done += len(chunk.rows) if chunk.rows is not None else batch.received
        if progress is not None:
            progress(done, max(lead_file.rows, done))
    if len(whole_chunk_problems) == len(lead_file.chunks):
        raise LeadFileRejected(whole_chunk_problems[0])  # e.g. no element has a phone field
    summary.errors.sort(key=lambda e: e.row)
    return summary


def _imported(done: int, total: int) -> str:
    return f"the first {done} of {total} rows were imported before this"


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """`[#########.....]  62%  1240/2000 rows` (for a terminal)."""
    share = done / total if total else 1.0
    filled = round(width * min(1.0, share))
    return f"[{'#' * filled}{'.' * (width - filled)}] {share:4.0%}  {done}/{total} rows"


def _decode(data: bytes) -> str | None:
    """The file as text if it is UTF-8 (a BOM is allowed); None lets the server say why not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _split_csv(text: str, chunk_rows: int) -> LeadFile | None:
    """Chunks of the header plus `chunk_rows` records each. Records are numbered as the server
    numbers them (the header is row 1; a quoted field over several lines is one row)."""
    lines = text.splitlines(keepends=True)
    reader = csv.reader(io.StringIO(text))
    records: list[tuple[int, str]] = []  # (file row, raw text) of each record, header first
    consumed = 0
    try:
        for number, fields in enumerate(reader, start=1):
            raw = "".join(lines[consumed:reader.line_num])
            consumed = reader.line_num
            if fields or number == 1:  # blank lines keep their row number but are not sent
                records.append((number, raw))
    except csv.Error:
        return None
    if len(records) < 2:
        return None
    header, data = records[0][1], records[1:]
    if not header.endswith(("\n", "\r")):
        header += "\n"
    chunks = []
    for start in range(0, len(data), chunk_rows):
        part = data[start:start + chunk_rows]
        body = header + "".join(r if r.endswith(("\n", "\r")) else r + "\n" for _, r in part)
        chunks.append(LeadChunk(body.encode(), _CONTENT_TYPES["csv"],
                                tuple(n for n, _ in part), 2,
                                tuple(r.rstrip("\r\n") for _, r in part), header_row=1))
    return LeadFile("csv", tuple(chunks), len(data))


def _split_json(text: str, chunk_rows: int) -> LeadFile | None:
    """Chunks of `chunk_rows` elements; rows are the elements' 1-based places in the file."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("leads"), list):
        data = data["leads"]
    if not isinstance(data, list) or not data:
        return None
    chunks = []
    for start in range(0, len(data), chunk_rows):
        part = data[start:start + chunk_rows]
        chunks.append(LeadChunk(json.dumps(part).encode(), _CONTENT_TYPES["json"],
                                tuple(range(start + 1, start + 1 + len(part))), 1,
                                tuple(json.dumps(e)[:200] for e in part)))
    return LeadFile("json", tuple(chunks), len(data))
