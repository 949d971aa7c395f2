"""YAML 1.2 text -> a small typed tree that keeps the line, column and raw text of every scalar.

ruamel.yaml composes the document (YAML 1.2 rules, so `no` stays a string); we convert its node
graph ourselves instead of letting it construct Python objects, because:

* a DTMF key must be the text the admin wrote (`01` is "01", not 1);
* duplicate keys must be errors (E002) at the second occurrence, all of them, not only the first;
* every value needs its position for `file:line:col` diagnostics.

Two mistakes YAML hides are caught on the raw lines before parsing (E006): an unquoted `#` key
in `options:`/`hotkeys:`/`exit_keys:` (YAML reads it as a comment, the option silently vanishes)
and an unquoted `*` (YAML reads it as an alias). Both need quotes: `"#": operator`.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dialer.ivr.diagnostics import Diagnostic
from dialer.ivr.model import Pos


@dataclass(frozen=True, slots=True)
class YScalar:
    raw: str  # the text as written (without quotes)
    value: object  # str, int, float, bool or None under the YAML 1.2 core schema
    quoted: bool
    pos: Pos


@dataclass(frozen=True, slots=True)
class YMap:
    items: tuple[tuple[YScalar, YNode], ...]
    pos: Pos

    def get(self, key: str) -> YNode | None:
        for k, v in self.items:
            if k.raw == key:
                return v
        return None

    def key(self, key: str) -> YScalar | None:
        for k, _ in self.items:
            if k.raw == key:
                return k
        return None


@dataclass(frozen=True, slots=True)
class YSeq:
    items: tuple[YNode, ...]
    pos: Pos


YNode = YScalar | YMap | YSeq

# Blocks whose keys are DTMF keys, and fields whose values are one DTMF key.
DTMF_BLOCKS = frozenset({"options", "hotkeys", "exit_keys"})
DTMF_VALUE_FIELDS = ("finish_on_key", "opt_out_key", "yes_key", "no_key", "key")

_BLOCK_KEY = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w.]*)\s*:\s*(?:#.*)?$")
_ANY_KEY = re.compile(r"^(\s*)(?:-\s+)?(\S)")
_BARE_KEY = re.compile(r"^(\s*)([#*])\s*:(\s|$)")
_BARE_VALUE = re.compile(r"(?:^|[\s{,])(" + "|".join(DTMF_VALUE_FIELDS) + r")\s*:\s*([#*])(?=\s|,|}|$)")

_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _plain_value(text: str) -> object:
    """A plain (unquoted) scalar under the YAML 1.2 core schema; dates stay strings."""
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _OCT.match(text):
        return int(text[2:], 8)
    if _HEX.match(text):
        return int(text[2:], 16)
    if _FLOAT.match(text):
        return float(text)
    if text in (".inf", ".Inf", ".INF", "+.inf", "-.inf", ".nan", ".NaN", ".NAN"):
        return float(text.replace(".", "", 1))
    return text


def _pos(file: str, node: Node) -> Pos:
    mark = node.start_mark
    return Pos(file, mark.line + 1, mark.column + 1)


def scan_dtmf_mistakes(text: str, file: str) -> list[Diagnostic]:
    """E006 for unquoted `#`/`*` DTMF keys and values, found on the raw lines."""
    diags: list[Diagnostic] = []
    stack: list[tuple[int, str]] = []  # (indent, key) of block keys enclosing the line
    for number, line in enumerate(text.splitlines(), start=1):
        bare = _BARE_KEY.match(line)
        if bare:
            indent = len(bare.group(1))
            enclosing = [key for ind, key in stack if ind < indent]
            if enclosing and enclosing[-1] in DTMF_BLOCKS:
                key = bare.group(2)
                what = "a YAML comment" if key == "#" else "a YAML alias"
                rest = line.strip()[1:].lstrip()[1:].strip()
                diags.append(Diagnostic(
                    "E006", f"unquoted DTMF key {key!r} in '{enclosing[-1]}': this line is {what}, "
                            f"not an option: `{line.strip()}`",
                    Pos(file, number, indent + 1), help=f'quote DTMF keys: "{key}": {rest}'))
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        for match in _BARE_VALUE.finditer(line):
            key, char = match.group(1), match.group(2)
            diags.append(Diagnostic(
                "E006", f"unquoted {char!r} as the value of '{key}' is "
                        f"{'a YAML comment (the value is empty)' if char == '#' else 'a YAML alias'}",
                Pos(file, number, match.start(2) + 1), help=f'quote it: {key}: "{char}"'))
        indent_match = _ANY_KEY.match(line)
        indent = len(indent_match.group(1)) if indent_match else 0
        while stack and stack[-1][0] >= indent:
            stack.pop()
        block = _BLOCK_KEY.match(line)
        if block:
            stack.append((indent, block.group(2)))
    return diags


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.diags: list[Diagnostic] = []
        self.open: set[int] = set()  # ids of the nodes being converted (alias cycles)

    def node(self, node: Node) -> YNode:
        if id(node) in self.open:  # `&a [*a]`: an alias inside its own anchor
            self.diags.append(Diagnostic("E004", "an alias refers to the value that contains it",
                                         _pos(self.file, node)))
            return YScalar("", None, False, _pos(self.file, node))
        self.open.add(id(node))
        try:
            return self._node(node)
        finally:
            self.open.discard(id(node))

    def _node(self, node: Node) -> YNode:
        if isinstance(node, ScalarNode):
            return self.scalar(node)
        if isinstance(node, SequenceNode):
            return YSeq(tuple(self.node(item) for item in node.value), _pos(self.file, node))
        if isinstance(node, MappingNode):
            return self.mapping(node)
        raise TypeError(f"unexpected YAML node {type(node).__name__}")

    def scalar(self, node: ScalarNode) -> YScalar:
        raw = str(node.value)
        quoted = node.style is not None and node.style in ("'", '"', "|", ">")
        value: object = raw if quoted or str(node.tag or "").startswith("!") else _plain_value(raw)
        return YScalar(raw, value, quoted, _pos(self.file, node))

    def mapping(self, node: MappingNode) -> YMap:
        items: list[tuple[YScalar, YNode]] = []
        seen: dict[str, YScalar] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.diags.append(Diagnostic("E004", "a key must be a plain value, not a list or map",
                                             _pos(self.file, key_node)))
                continue
            key = self.scalar(key_node)
            if key.raw == "<<" and not key.quoted:
                self.diags.append(Diagnostic("E003", "merge keys (`<<`) are not supported in flow files",
                                             key.pos, help="write the fields out"))
                continue
            # Keys are used by their text (DTMF keys must keep `01`), so two keys are the
            # same when they read the same: `1` and "1" clash, `1` and `01` do not.
            ident = key.raw
            first = seen.get(ident)
            if first is not None:
                self.diags.append(Diagnostic(
                    "E002", f"duplicate key '{key.raw}' (YAML would silently keep the last one)",
                    key.pos, help=f"first defined at {first.pos}"))
                continue
            seen[ident] = key
            items.append((key, self.node(value_node)))
        return YMap(tuple(items), _pos(self.file, node))


def parse_yaml(text: str, file: str) -> tuple[YNode | None, list[Diagnostic]]:
    """Parse one YAML document. Returns (tree or None, diagnostics E001/E002/E006); never raises
    on bad input."""
    diags = scan_dtmf_mistakes(text, file)
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            root = yaml.compose(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if not any(d.code == "E006" and d.pos.line == line for d in diags):
            problem = exc.problem or exc.context or "invalid YAML"
            context = f" ({exc.context})" if exc.context and exc.problem else ""
            diags.append(Diagnostic("E001", f"YAML syntax: {problem}{context}", Pos(file, line, col),
                                    help=_syntax_help(text, line)))
        return None, diags
    except YAMLError as exc:
        diags.append(Diagnostic("E001", f"YAML syntax: {exc}", Pos(file, 1, 1)))
        return None, diags
    except RecursionError:
        diags.append(Diagnostic("E001", "YAML nesting is too deep", Pos(file, 1, 1)))
        return None, diags
    if root is None:
        diags.append(Diagnostic("E001", "the file is empty", Pos(file, 1, 1)))
        return None, diags
    builder = _Builder(file)
    try:
        tree = builder.node(root)
    except RecursionError:
        return None, [*diags, Diagnostic("E001", "YAML nesting is too deep", Pos(file, 1, 1))]
    return tree, diags + builder.diags


def _syntax_help(text: str, line: int) -> str | None:
    lines = text.splitlines()
    if 0 < line <= len(lines) and "\t" in lines[line - 1]:
        return "YAML does not allow tabs for indentation; use spaces"
    return None
