#!/usr/bin/env python3
"""schema-check.py: checks Spate's message definitions against Apache Kafka's JSON schemas.

The round-trip property test cannot catch a field declared in the wrong versions (encode and
decode agree with each other), so this compares every `message! { ... }` block in
src/protocol/messages/*.rs with Kafka's common/message/*.json, for each API (`impl Request`:
VERSIONS, FLEXIBLE_FROM, Response), each version of VERSIONS, request and response, recursing
into nested structs (by Rust type name: `Vec<FetchTopic>` -> struct FetchTopic; in the schema,
inline `fields` or `commonStructs`):
  - the untagged fields present in that version, by position: the same Kafka type (int16 is
    i16 or ErrorCode, records Bytes or RecordSet, uuid [u8; 16], []T Vec<T>, ...) and the same
    nullability (Spate: an Option type, narrowed by `nullable P`; Kafka: nullableVersions);
  - the tagged fields present in that version: the same tags and types, declared by tag;
  - FLEXIBLE_FROM (which api.rs's advertised flexible_from is) against flexibleVersions, VERSIONS
    within validVersions, ApiKey's number against apiKey.
Field names need not match (Spate keeps some of its own): a differing name is only a note.

Usage:  scripts/schema-check.py [--schemas DIR | --jar JAR] [--root REPO] [--quiet]
  default        the kafka-clients jar of the Kafka version in scripts/kafka-tools/pom.xml,
                 in target/kafka-libs/<version>/ (or $KAFKA_TOOL_CACHE/<version>/), resolved
                 first by `scripts/kafka-tool.sh --resolve` (Maven, once; then a no-op)
  --schemas DIR  a directory of Kafka's *.json schemas instead (e.g. from a Kafka checkout)
  --jar JAR      another kafka-clients jar
  --root REPO    the Spate checkout to check (default: this script's)
  --quiet        no notes (differing names and the like), only mismatches
Prints one line per mismatch, "MISMATCH <Api> <request|response> v<versions> <struct path>
field #<position from 0>|tag <N>: <what differs>", and exits 1 if there is any; else a summary
and exit 0; exit 2 on usage or setup errors. Python 3 standard library only; builds nothing.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from collections import defaultdict

# Kafka's primitive types and the Rust types (spaces removed) Spate encodes them with.
PRIMITIVES = {
    "int8": {"i8"}, "int16": {"i16", "ErrorCode"}, "int32": {"i32"}, "int64": {"i64"},
    "uint16": {"u16"}, "uint32": {"u32"}, "float64": {"f64"}, "bool": {"bool"},
    "string": {"String"}, "bytes": {"Bytes"}, "records": {"Bytes", "RecordSet"},
    "uuid": {"[u8;16]"},
}
# API name -> the lowest version Spate serves below Kafka 4.x's validVersions.
SERVED_BELOW_KAFKA_4 = {"DescribeConfigs": 0}
I16_MAX = 32767


def die(msg):
    print(f"schema-check: {msg}", file=sys.stderr)
    sys.exit(2)


# --- versions ------------------------------------------------------------------------------
def kafka_range(spec):
    """A Kafka version spec ("0+", "3-7", "5", "none") as (lo, hi); None for "none"."""
    spec = (spec or "none").strip()
    if spec == "none":
        return None
    if spec.endswith("+"):
        return int(spec[:-1]), I16_MAX
    lo, _, hi = spec.partition("-")
    return int(lo), int(hi or lo)


def in_kafka(spec, v):
    r = kafka_range(spec)
    return r is not None and r[0] <= v <= r[1]


def rust_int(s):
    return I16_MAX if s.strip() == "i16::MAX" else int(s.strip().replace("_", ""))


def in_rust(pattern, v):
    """Whether v matches a Rust pattern: `5..`, `1..=4`, `..=3`, `2..5`, `0`, `1 | 3..`."""
    for alt in pattern.split("|"):
        m = re.fullmatch(r"\s*([\w:]*)\s*(\.\.=?)?\s*([\w:]*)\s*", alt)
        if not m or not (m[1] or m[2]):
            die(f"cannot read the version pattern `{pattern}`")
        lo = rust_int(m[1]) if m[1] else -I16_MAX
        hi = lo if not m[2] else I16_MAX if not m[3] else rust_int(m[3]) - (m[2] == "..")
        if lo <= v <= hi:
            return True
    return False


def ranges(vs):
    """[4, 5, 6, 9] -> "4-6,9"."""
    out = []
    for v in sorted(set(vs)):
        if out and out[-1][1] == v - 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in out)


# --- Spate's side: message! blocks, impl Request, api.rs ---------------------------------
def balanced(text, start, open_ch, close_ch):
    """The index just past the close_ch matching the open_ch at text[start]."""
    depth = 0
    for i in range(start, len(text)):
        depth += {open_ch: 1, close_ch: -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    die(f"unbalanced {open_ch} in `{text[start:start + 60]}...`")


def split_top(text):
    """Splits at the commas outside <>, [], (), {}."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += 1 if ch in "<[({" else -1 if ch in ">])}" else 0
        if ch == "," and depth == 0:
            parts, cur = parts + [cur], ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur] if p.strip()]


def parse_field(entry, where):
    """`pub name: Type [vers, tag N, nullable P] = default` -> a dict."""
    m = re.match(r"pub\s+(\w+)\s*:\s*", entry)
    if not m:
        die(f"{where}: cannot parse the field `{entry}`")
    rest = entry[m.end():]
    if rest.startswith("["):                      # an array type: [u8; 16]
        i = balanced(rest, 0, "[", "]")
    else:                                         # a path, maybe with <generics>
        i = re.match(r"[\w:]+", rest).end()
        if rest[i:i + 1] == "<":
            i = balanced(rest, i, "<", ">")
    field = {"name": m[1], "type": re.sub(r"\s+", "", rest[:i]), "vers": None, "tag": None,
             "nullable": None}
    rest = rest[i:].strip()
    if rest.startswith("["):
        attrs = split_top(rest[1:balanced(rest, 0, "[", "]") - 1])
        field["vers"] = attrs[0]
        for a in attrs[1:]:
            key, _, val = a.partition(" ")
            if key not in ("tag", "nullable"):
                die(f"{where}: unknown `{a}` in field {m[1]}")
            field[key] = int(val) if key == "tag" else val.strip()
    return field


def parse_spate(root):
    """The message! structs (name -> fields), the impl Requests, and api.rs's ApiKey numbers."""
    structs, apis = {}, []
    msg_dir = os.path.join(root, "src/protocol/messages")
    for fname in sorted(f for f in os.listdir(msg_dir) if f.endswith(".rs")):
        with open(os.path.join(msg_dir, fname), encoding="utf-8") as f:
            # Comments (doc comments too) and attributes carry nothing the wire depends on.
            text = re.sub(r"//[^\n]*|#\[[^\]]*\]", "", f.read())
        for m in re.finditer(r"message!\s*\{", text):
            block = text[m.end() - 1:balanced(text, m.end() - 1, "{", "}")]
            for s in re.finditer(r"pub\s+struct\s+(\w+)\s*\{", block):
                body = block[s.end():balanced(block, s.end() - 1, "{", "}") - 1]
                structs[s[1]] = [parse_field(e, f"{fname} {s[1]}") for e in split_top(body)]
        for m in re.finditer(r"impl\s+Request\s+for\s+(\w+)\s*\{(.*?)\n\}", text, re.S):
            get = lambda r: re.search(r, m[2])
            vers = get(r"VERSIONS\s*:[^=]*=\s*\(\s*(-?\d+)\s*,\s*(-?\d+)\s*\)")
            flex = get(r"FLEXIBLE_FROM\s*:[^=]*=\s*([\w:]+)")
            resp, key = get(r"type\s+Response\s*=\s*(\w+)"), get(r"KEY\s*:[^=]*=\s*ApiKey::(\w+)")
            if not (vers and flex and resp and key):
                die(f"{fname}: cannot parse impl Request for {m[1]}")
            apis.append({"request": m[1], "response": resp[1], "key": key[1],
                         "versions": (int(vers[1]), int(vers[2])),
                         "flexible_from": rust_int(flex[1])})
    with open(os.path.join(root, "src/protocol/api.rs"), encoding="utf-8") as f:
        api_rs = f.read()
    enum = re.search(r"enum\s+ApiKey\s*\{(.*?)\}", api_rs, re.S)[1]
    keys = {k: int(n) for k, n in re.findall(r"(\w+)\s*=\s*(\d+)", enum)}
    return structs, apis, keys


# --- Kafka's side: the JSON schemas ---------------------------------------------------------
def load_schemas(args):
    """Schema name ("FetchRequest") -> schema, and where they came from."""
    texts, source = {}, args.schemas or args.jar
    if args.schemas:
        for fname in sorted(f for f in os.listdir(args.schemas) if f.endswith(".json")):
            with open(os.path.join(args.schemas, fname), encoding="utf-8") as f:
                texts[fname] = f.read()
    else:
        if not source:
            root = args.root
            with open(os.path.join(root, "scripts/kafka-tools/pom.xml"), encoding="utf-8") as f:
                version = re.search(r"<kafka.version>(.*?)</kafka.version>", f.read())[1]
            cache = os.environ.get("KAFKA_TOOL_CACHE", os.path.join(root, "target/kafka-libs"))
            source = os.path.join(cache, version, f"kafka-clients-{version}.jar")
            rc = subprocess.call([os.path.join(root, "scripts/kafka-tool.sh"), "--resolve"],
                                 stdout=sys.stderr)
            if rc != 0 or not os.path.isfile(source):
                die(f"no {source} (kafka-tool.sh --resolve exited {rc}); or use --schemas DIR")
        with zipfile.ZipFile(source) as z:
            for n in z.namelist():
                if re.fullmatch(r"common/message/\w+\.json", n):
                    texts[n] = z.read(n).decode("utf-8")
    if not texts:
        die(f"no common/message/*.json schemas in {source}")
    schemas = {}
    for fname, text in texts.items():
        # Whole-line // comments (licence, version notes); "about" strings may hold "//" (URLs).
        lines = [l for l in text.splitlines() if not l.lstrip().startswith("//")]
        try:
            schema = json.loads("\n".join(lines))
        except json.JSONDecodeError as e:
            die(f"{fname}: {e}")
        schemas[schema["name"]] = schema
    return schemas, source


# --- the comparison -------------------------------------------------------------------------
def snake(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def unwrap(ty, outer):
    m = re.fullmatch(outer + r"<(.*)>", ty)
    return m[1] if m else None


class Checker:
    def __init__(self, structs):
        self.structs = structs
        self.mismatches = defaultdict(set)   # (api, side, path, what) -> versions
        self.notes = set()

    def mismatch(self, ctx, v, path, what):
        """A mismatch in version v (in every version of VERSIONS when v is None)."""
        vs = range(ctx["versions"][0], ctx["versions"][1] + 1) if v is None else [v]
        self.mismatches[(ctx["api"], ctx["side"], path, what)].update(vs)

    def struct(self, ctx, v, name, fields, path):
        """Spate's struct `name` against the schema's `fields`, in version v."""
        ours = [f for f in self.structs[name] if f["vers"] is None or in_rust(f["vers"], v)]
        theirs = [f for f in fields if in_kafka(f.get("versions", f.get("taggedVersions")), v)]
        tagged = lambda f: "tag" in f and in_kafka(f.get("taggedVersions"), v)
        # Untagged fields, by position.
        ou, tu = [f for f in ours if f["tag"] is None], [f for f in theirs if not tagged(f)]
        shift = len(ou) - len(tu)
        for i in range(max(len(ou), len(tu))):
            where = f"{path} field #{i}"
            if i >= len(ou):
                self.mismatch(ctx, v, where, f"missing in Spate: {tu[i]['name']}: {tu[i]['type']}")
                continue
            if i >= len(tu):
                self.mismatch(ctx, v, where, f"extra in Spate: {ou[i]['name']}: {ou[i]['type']}")
                continue
            nullable = ou[i]["type"].startswith("Option<") and (
                ou[i]["nullable"] is None or in_rust(ou[i]["nullable"], v))
            # With a field too many or too few, the first type mismatch is where the two part
            # ways: the positions after it would only repeat the shift.
            note = f" (Spate has {shift:+d} untagged fields here; later ones not compared)"
            if not self.field(ctx, v, ou[i], nullable, tu[i], path, where, note if shift else ""):
                if shift:
                    break
        if v < ctx["flexible_from"]:
            return
        # Tagged fields, by tag. Spate writes them in declaration order: that must be by tag.
        ot = [f for f in ours if f["tag"] is not None]
        tt = {f["tag"]: f for f in theirs if tagged(f)}
        tags = [f["tag"] for f in ot]
        if tags != sorted(set(tags)):
            self.mismatch(ctx, v, path, f"tagged fields not declared by increasing tag: {tags}")
        for tag in sorted(set(tt) - set(tags)):
            self.mismatch(ctx, v, f"{path} tag {tag}",
                          f"missing in Spate: {tt[tag]['name']}: {tt[tag]['type']}")
        for f in ot:
            where, k = f"{path} tag {f['tag']}", tt.get(f["tag"])
            inner = unwrap(f["type"], "Option")      # the outer Option is the field's presence
            if k is None or inner is None:
                what = "extra in Spate" if k is None else "a tagged field must be an Option"
                self.mismatch(ctx, v, where, f"{what}: {f['name']}: {f['type']}")
                continue
            nullable = inner.startswith("Option<")
            # Kafka writes a tagged field only when it is not its default: with a null default,
            # null never goes on the wire, so Spate need not read it.
            null_default = k.get("default") == "null" and in_kafka(k.get("nullableVersions"), v)
            if not nullable and null_default:
                nullable = True
                self.notes.add(f"{ctx['api']} {ctx['side']} {where}: {f['name']} is not nullable, "
                               f"the schema's {k['name']} is, with default null (never written)")
            self.field(ctx, v, dict(f, type=inner), nullable, k, path, where)

    def field(self, ctx, v, ours, nullable, theirs, path, where, suffix=""):
        """One field (its type without the Option that makes it nullable); whether the types
        matched."""
        desc = f"{ours['name']}: {ours['type']} vs schema {theirs['name']}: {theirs['type']}"
        if snake(theirs["name"]) != ours["name"]:
            self.notes.add(f"{ctx['api']} {ctx['side']} {path}: Spate's {ours['name']} is the "
                           f"schema's {theirs['name']}")
        if theirs.get("flexibleVersions"):
            self.mismatch(ctx, v, where, f"{desc}: the schema field has its own flexibleVersions")
        theirs_nullable = in_kafka(theirs.get("nullableVersions"), v)
        if nullable != theirs_nullable:
            yes = lambda b: "yes" if b else "no"
            self.mismatch(ctx, v, where, f"{desc}: nullable in Spate {yes(nullable)}, "
                                         f"in the schema {yes(theirs_nullable)}")
        base = unwrap(ours["type"], "Option") or ours["type"]
        error = self.type(ctx, v, base, theirs["type"], theirs, f"{path}.{ours['name']}")
        if error:
            self.mismatch(ctx, v, where, f"{desc}: {error}{suffix}")
        return error is None

    def type(self, ctx, v, rust, kafka, theirs, path):
        """A Rust type against a Kafka type, recursing into structs: an error, or None."""
        if kafka.startswith("[]"):
            elem = unwrap(rust, "Vec")
            if elem is None:
                return f"{rust} is not a Vec"
            if elem.startswith("Option<"):
                return "array elements are never nullable"
            return self.type(ctx, v, elem, kafka[2:], theirs, path + "[]")
        if kafka in PRIMITIVES:
            return None if rust in PRIMITIVES[kafka] else f"{rust} does not encode {kafka}"
        if rust not in self.structs:
            return f"{rust} is not a message! struct (the schema's {kafka} is a struct)"
        common = {s["name"]: s["fields"] for s in ctx["schema"].get("commonStructs", [])}
        fields = theirs.get("fields", common.get(kafka))
        if fields is None:
            return f"the schema has no struct {kafka}"
        self.struct(ctx, v, rust, fields, path)
        return None


def check_api(checker, api, side, schemas, keys):
    """An API's request or response, in the versions of VERSIONS that the schema defines."""
    name, (lo, hi), struct = api["key"], api["versions"], api[side]
    schema = schemas.get(struct)
    ctx = {"api": name, "side": side, "versions": (lo, hi), "schema": schema,
           "flexible_from": api["flexible_from"]}
    if schema is None or struct not in checker.structs:
        what = "no schema of that name" if schema is None else "no message! struct of that name"
        return checker.mismatch(ctx, None, struct, what)
    if schema.get("apiKey") != keys.get(name):
        checker.mismatch(ctx, None, struct, f"ApiKey::{name} is {keys.get(name)}, "
                                            f"the schema's apiKey {schema.get('apiKey')}")
    valid = kafka_range(schema.get("validVersions")) or (0, -1)
    # Versions Spate still serves although Kafka 4 removed them (KIP-896), on purpose: older
    # clients send them and they cost nothing to keep. Checked against Kafka 3.9's schemas
    # (`--schemas` from apache/kafka at 3.9), which still define them.
    floor = min(valid[0], SERVED_BELOW_KAFKA_4.get(name, valid[0]))
    if not floor <= lo <= hi <= valid[1]:
        checker.mismatch(ctx, None, struct, f"VERSIONS ({lo}, {hi}) not within the schema's "
                                            f"validVersions {schema.get('validVersions')}")
    flex = (kafka_range(schema.get("flexibleVersions")) or (I16_MAX,))[0]
    if api["flexible_from"] != flex:
        checker.mismatch(ctx, None, struct, f"FLEXIBLE_FROM is {api['flexible_from']}, the schema's "
                                            f"flexibleVersions {schema.get('flexibleVersions')}")
    # A version the schema no longer defines (Kafka 4 dropped some) has nothing to compare:
    # its fields' specs still say "0+" where the baseline moved on.
    for v in range(max(lo, valid[0]), min(hi, valid[1]) + 1):
        checker.struct(ctx, v, struct, schema["fields"], struct)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--schemas", metavar="DIR")
    source.add_argument("--jar")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    structs, apis, keys = parse_spate(args.root)
    schemas, source = load_schemas(args)
    checker = Checker(structs)
    for api in apis:
        for side in ("request", "response"):
            check_api(checker, api, side, schemas, keys)
    for note in [] if args.quiet else sorted(checker.notes):
        print(f"note: {note}")
    for (api, side, path, what), vs in sorted(checker.mismatches.items()):
        print(f"MISMATCH {api} {side} v{ranges(vs)} {path}: {what}")
    if checker.mismatches:
        print(f"schema-check: {len(checker.mismatches)} mismatches against {source}")
        return 1
    spans = [range(a["versions"][0], a["versions"][1] + 1) for a in apis]
    print(f"schema-check: OK, {len(apis)} APIs in {sum(map(len, spans))} versions (requests and "
          f"responses) agree with {source}: "
          + ", ".join(f"{a['key']} v{ranges(vs)}" for a, vs in zip(apis, spans)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
