#!/usr/bin/env python3
"""The reference agrees with the program: every configuration key the parser accepts is
documented in docs/reference/configuration.md, in the row of its section, and every documented
key is accepted; every command and option of the CLI is in docs/reference/cli.md and in the man
page, and no option is documented that the CLI does not take; every metric family the exporter
defines has its row in docs/reference/metrics.md, every HTTP path the agent serves its row in
docs/reference/http-api.md, and every row in them is one that exists.

The accepted keys come from the program itself: a key it does not know makes it name the keys
allowed there ("unknown key 'x' (allowed here: a, b)"), so a new key cannot ship without a line
in the reference, and nothing here lists keys by hand.

    tests/source/reference_test.py GHOSTWATCH_BINARY SOURCE_DIR
"""
import copy
import json
import os
import re
import subprocess
import sys
import tempfile

BIN, SRC = sys.argv[1], sys.argv[2]
UNKNOWN = "zz_not_a_key"
failures = []


def fail(message):
    failures.append(message)


def read(path):
    """A file of the source tree."""
    with open(os.path.join(SRC, path)) as f:
        return f.read()


def check_config(config, web_config=None):
    """check-config's exit code and stderr for a config (and the web config it names)."""
    with tempfile.TemporaryDirectory() as d:
        if web_config is not None:
            config = copy.deepcopy(config)
            config["agent"]["web_config"] = os.path.join(d, "web.yml")
            with open(config["agent"]["web_config"], "w") as f:
                json.dump(web_config, f)
        path = os.path.join(d, "ghostwatch.yaml")
        # JSON is YAML: no YAML library needed here.
        with open(path, "w") as f:
            json.dump(config, f, indent=1)
        r = subprocess.run([BIN, "check-config", "--config", path], capture_output=True, text=True, timeout=30)
        return r.returncode, r.stderr


# A config with every section, valid without servers (check-config connects to nothing).
BASE = {
    "agent": {"id": "reference", "listen": "127.0.0.1:9739"},
    "probes": [
        {
            "name": "pg", "kind": "postgres",
            "primary": {"dsn": "host=127.0.0.1 port=5432 dbname=app user=gw"},
            "targets": [
                {"name": "replica", "dsn": "host=127.0.0.1 port=5433 dbname=app user=gw"},
                {"name": "cache", "redis": "127.0.0.1:6379", "key": "canary:{probe}", "tls": {"server_name": "cache"}},
            ],
            "read_paths": [{"name": "lb", "dsn": "host=127.0.0.1 port=5434 dbname=app user=gw"}],
            "session_settings": {"synchronous_commit": "on"},
            "discovery": {
                "dsn_template": "host={host} port={port} dbname=app user=gw",
                "patroni": {"urls": ["http://127.0.0.1:8008"]},
                "dns": {"name": "db.example", "port": 5432},
                "file": {"path": "/etc/ghostwatch/targets.yaml"},
            },
        },
        {
            "name": "maria", "kind": "mysql", "primary": "mysql://gw@127.0.0.1:3306/",
            "targets": [{"name": "replica", "dsn": "mysql://gw@127.0.0.1:3307/"}],
            "session_settings": {"wsrep_sync_wait": 1},
            "discovery": {"dsn_template": "mysql://gw@{host}:{port}/", "from_primary": {"interval": "10s"}},
        },
        {
            "name": "users", "kind": "reconcile",
            "cache": {"redis": "127.0.0.1:6379", "key": "user:{id}"},
            "source": {"probe": "pg", "table": "users", "id_column": "id", "version_column": "version"},
        },
    ],
    "slos": [{"name": "fresh", "probe": "pg", "threshold": "1s", "objective": 0.99}],
}

# Where to put the unknown key, and the reference row(s) that must name what is allowed there:
# a "row prefix" means one row per key (`agent.id`), a "row" means the keys are named in that
# one row's text.
SECTIONS = [
    ((), {"rows_for": {"agent": "`agent.", "probes": "`probes[]", "slos": "`slos[]"}}),
    (("agent",), {"row_prefix": "agent."}),
    (("probes", 0), {"row_prefix": "probes[]."}),
    (("probes", 0, "primary"), {"row": "`probes[].primary`"}),
    (("probes", 0, "targets", 0), {"row": "`probes[].targets[]`"}),
    (("probes", 0, "targets", 1, "tls"), {"row": "`probes[].targets[]`"}),
    (("probes", 0, "read_paths", 0), {"row": "`probes[].read_paths[]`"}),
    (("probes", 0, "discovery"), {"row": "`probes[].discovery`"}),
    (("probes", 0, "discovery", "patroni"), {"row": "`probes[].discovery`"}),
    (("probes", 0, "discovery", "dns"), {"row": "`probes[].discovery`"}),
    (("probes", 0, "discovery", "file"), {"row": "`probes[].discovery`"}),
    (("probes", 1, "discovery", "from_primary"), {"row": "`probes[].discovery`"}),
    (("probes", 2), {"row": "reconcile probes"}),
    (("probes", 2, "cache"), {"row": "reconcile probes"}),
    (("probes", 2, "source"), {"row": "reconcile probes"}),
    (("slos", 0), {"row": "`slos[]`"}),
]
# The session settings a probe may set: "is not a session setting ... (allowed: a, b)".
SETTINGS = [(("probes", 0, "session_settings"), "`probes[].session_settings`"),
            (("probes", 1, "session_settings"), "`probes[].session_settings`")]
WEB_SECTIONS = [((), "`"), (("tls_server_config",), "`tls_server_config.")]


def at(tree, path):
    for step in path:
        tree = tree[step]
    return tree


def allowed_keys(config, path, pattern):
    """The keys the program names as allowed at `path` once an unknown one is put there."""
    config = copy.deepcopy(config)
    at(config, path)[UNKNOWN] = 1
    return config


def names_from(stderr, pattern, where):
    m = re.search(pattern, stderr)
    if not m:
        fail(f"{where}: the program did not name the allowed keys; it said: {stderr.strip()}")
        return []
    return [k.strip() for k in m.group(1).split(",")]


def table_rows(markdown):
    return [line for line in markdown.splitlines() if line.startswith("| ")]


def first_cell(row):
    return row.split("|")[1].strip()


def names(row_text, key):
    return re.search(r"(?<![\w.\-])" + re.escape(key) + r"(?![\w\-])", row_text) is not None


reference = read("docs/reference/configuration.md")
rows = table_rows(reference)

code, err = check_config(BASE)
if code != 0:
    print(f"the base config does not pass check-config: {err}", file=sys.stderr)
    sys.exit(1)

checked = 0
accepted_per_prefix = {}
for path, doc in SECTIONS:
    where = ".".join(str(p) for p in path) or "the top level"
    code, err = check_config(allowed_keys(BASE, path, None))
    keys = names_from(err, r"unknown key '" + UNKNOWN + r"' \(allowed here: ([^)]*)\)", where)
    checked += len(keys)
    if "row_prefix" in doc:
        accepted_per_prefix[doc["row_prefix"]] = set(keys)
        for key in keys:
            if not any(first_cell(r) in (f"`{doc['row_prefix']}{key}`", f"`{doc['row_prefix']}{key}[]`") for r in rows):
                fail(f"configuration.md: no row `{doc['row_prefix']}{key}` ({where} accepts '{key}')")
    elif "rows_for" in doc:
        for key in keys:
            prefix = doc["rows_for"].get(key)
            if prefix is None or not any(first_cell(r).startswith(prefix) for r in rows):
                fail(f"configuration.md: no row for the top-level key '{key}'")
    else:
        row = [r for r in rows if first_cell(r) == doc["row"]]
        if not row:
            fail(f"configuration.md: no row {doc['row']}")
            continue
        for key in keys:
            if not names(row[0], key):
                fail(f"configuration.md: the row {doc['row']} does not name '{key}' ({where} accepts it)")

for path, row_name in SETTINGS:
    config = copy.deepcopy(BASE)
    at(config, path)[UNKNOWN] = "x"
    code, err = check_config(config)
    keys = names_from(err, r"is not a session setting .*\(allowed: ([^)]*)\)", ".".join(map(str, path)))
    checked += len(keys)
    row = [r for r in rows if first_cell(r) == row_name]
    for key in keys:
        if not row or not names(row[0], key):
            fail(f"configuration.md: the row {row_name} does not name the session setting '{key}'")

# And no row documents a key the program refuses.
for prefix, keys in accepted_per_prefix.items():
    for r in rows:
        cell = first_cell(r)
        m = re.fullmatch(r"`" + re.escape(prefix) + r"([a-z_]+)(?:\[\])?`", cell)
        if m and m.group(1) not in keys:
            fail(f"configuration.md documents {cell}, which the program does not accept")

# The web config: its own file, its own table in the reference.
for path, prefix in WEB_SECTIONS:
    web = {"tls_server_config": {"cert_file": "a.crt", "key_file": "a.key"}}
    at(web, path)[UNKNOWN] = 1
    code, err = check_config(BASE, web)
    keys = names_from(err, r"unknown key '" + UNKNOWN + r"' \(allowed here: ([^)]*)\)", "the web config")
    checked += len(keys)
    for key in keys:
        if not any(first_cell(r) == f"{prefix}{key}`" or first_cell(r) == f"`{key}`" and prefix == "`" for r in rows):
            fail(f"configuration.md: no row {prefix}{key}` for the web config")

# The CLI: commands and options, in the reference and in the man page.
cli = read("docs/reference/cli.md")
man = read("packaging/ghostwatch.1").replace("\\-", "-")
usage = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
commands = re.findall(r"^  ([a-z][a-z-]*)  ", usage.split("commands:", 1)[1], re.M)
if len(commands) < 5:
    fail(f"found only {commands} in `ghostwatch --help`")
accepted_options = set()
for command in commands:
    if not re.search(r"ghostwatch " + re.escape(command) + r"\b", cli):
        fail(f"cli.md does not show `ghostwatch {command}`")
    if not re.search(r"ghostwatch " + re.escape(command) + r"\b", man):
        fail(f"the man page does not show ghostwatch {command}")
    text = subprocess.run([BIN, command, "--help"], capture_output=True, text=True, timeout=30)
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", text.stdout + text.stderr)) - {"--help"}
    accepted_options |= options
    checked += len(options)
    for option in sorted(options):
        if not re.search(re.escape(option) + r"(?![\w-])", cli):
            fail(f"cli.md does not document `ghostwatch {command} {option}`")
        if not re.search(re.escape(option) + r"(?![\w-])", man):
            fail(f"the man page does not document `ghostwatch {command} {option}`")
for option in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", cli)) - accepted_options - {"--help"}):
    fail(f"cli.md documents {option}, which no command accepts")



def agree_both_ways(found, documented, least, what, page, does, does_not):
    """Every name the source has (`found`, at least `least` of them) has its row in `page`, and
    every row there is one the source has."""
    global checked
    if len(found) < least:
        fail(f"found only {sorted(found)} as {what}")
    for name in sorted(found - documented):
        fail(f"{page} has no row for {name}, which {does}")
    for name in sorted(documented - found):
        fail(f"{page} documents {name}, which {does_not}")
    checked += len(found)


# The metric families: the names in the exporter's family table against the reference's rows.
agree_both_ways(set(re.findall(r'"(ghostwatch_[a-z_]+)"', read("exporters/prometheus_sink.cpp"))),
                set(re.findall(r"^\| `(ghostwatch_[a-z_]+)`", read("docs/reference/metrics.md"), re.M)), 20,
                "metric families in exporters/prometheus_sink.cpp", "metrics.md",
                "the exporter defines", "the exporter does not define")

# The README's minimal config is one the program accepts.
readme = read("README.md")
m = re.search(r"## A minimal config\n.*?```yaml\n(.*?)```", readme, re.S)
if not m:
    fail("README.md has no minimal config (a yaml block under '## A minimal config')")
else:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(m.group(1))
        f.flush()
        env = dict(os.environ, PG_PASSWORD="x", MARIA_PASSWORD="x")
        r = subprocess.run([BIN, "check-config", "--config", f.name], capture_output=True, text=True, timeout=30, env=env)
        if r.returncode != 0:
            fail(f"README.md's minimal config is refused: {r.stderr.strip()}")

# The HTTP endpoints: the agent's routes against the API reference's table.
agree_both_ways(set(re.findall(r'http_\.route\("([^"]+)"', read("agent/agent.cpp"))),
                set(re.findall(r"^\| `(?:GET|POST)[^ ]* (/[^`? ]*)", read("docs/reference/http-api.md"), re.M)), 5,
                "the agent's routes in agent/agent.cpp", "http-api.md",
                "the agent serves", "the agent does not serve")

if failures:
    print("\n".join(failures), file=sys.stderr)
    print(f"reference: {len(failures)} disagreement(s) between the program and its reference", file=sys.stderr)
    sys.exit(1)
print(f"reference: {checked} keys, settings, options, metric families and endpoints, each documented; "
      f"commands: {', '.join(commands)}")
