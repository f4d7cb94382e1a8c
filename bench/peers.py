"""What other lag tools report, beside ghostwatch and beside the truth (bench/peers.sh runs this).

postgres_exporter (on pg-replica-2, its pg_replication_lag: now() - pg_last_xact_replay_timestamp()),
mysqld_exporter (on maria-replica: its heartbeat collector reading pt-heartbeat's table, and
Seconds_Behind_Master), pt-heartbeat (--monitor on maria-replica) and one ghostwatch agent (a
probe per database) run at the same time through scenarios whose truth the sandbox injects:

  steady  writes every 100 ms on both primaries; the replicas' delays as set (the truth)
  idle    no writes but each tool's own
  paused  replay stopped (pg_wal_replay_pause, STOP SLAVE SQL_THREAD) with writes going on:
          the truth grows by a second every second
  cut     the WAL receiver / the IO thread cut, with writes going on: the same truth
  burst   2000 single-row transactions at once on each primary, beside the steady writes: the
          truth's worst is the largest age of the oldest load row not yet on the replica, which
          this script samples every 50 ms through the scenario (the row's insert time and the
          age both on the primary's clock), when larger than the delay

Every second it reads each tool's current figure. ghostwatch's is the larger of the age of its
oldest unseen canary (pending) and the mean lag of the canaries it saw since the last read (or
its last such mean). Before each scenario both replicas have caught up (a row written on each
primary is seen on its replica), and every tool is read once, unrecorded, as the scenario begins. A tool flags a stop when its figure reaches FLAG_SECONDS; an absent figure (NULL) does
not count as a flag. CPU is the tool's processes' CPU time over the scenario; the scrape size is
one /metrics answer's.
"""

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

FLAG_SECONDS = 3.0
SANDBOX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "sandbox.sh")
GHOSTWATCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "ghostwatch")


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: source the sandbox env.sh first (scripts/sandbox.sh up)")
    return value


def sandbox(*args):
    subprocess.run([SANDBOX, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class QueryError(Exception):
    """A failed query, said without its DSN (which holds a password)."""


def pg_client(dsn):
    """psql's arguments for a key=value DSN and its environment: the password goes in PGPASSWORD,
    never on a command line (ps shows those to every user)."""
    words = dsn.split()
    password = [w[len("password="):] for w in words if w.startswith("password=")]
    rest = " ".join(w for w in words if not w.startswith("password="))
    return ["psql", "-X", "-q", rest], ({"PGPASSWORD": password[0]} if password else {})


def psql(dsn, sql):
    client, extra = pg_client(dsn)
    out = subprocess.run(client + ["-tA", "-v", "ON_ERROR_STOP=1", "-c", sql], capture_output=True, text=True,
                         timeout=30, env={**os.environ, **extra})
    if out.returncode != 0:
        raise QueryError(f"psql: {sql}: {out.stderr.strip()}")
    return out.stdout.strip()


def maria_uri_args(uri):
    m = re.match(r"mysql://([^:]+):([^@]*)@([^:/]+):(\d+)/", uri)
    if not m:
        sys.exit("cannot read the MariaDB admin URI")
    user, password, host, port = m.groups()
    return ["mariadb", "--no-defaults", f"-h{host}", f"-P{port}", f"-u{user}"], {"MYSQL_PWD": password}


def maria(uri, sql):
    args, extra = maria_uri_args(uri)
    out = subprocess.run(args + ["-N", "-e", sql], capture_output=True, text=True, timeout=30,
                         env={**os.environ, **extra})
    if out.returncode != 0:
        raise QueryError(f"mariadb: {sql}: {out.stderr.strip()}")
    return out.stdout.strip()


def get(url, timeout=2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.read().decode()
    except OSError:
        return ""


def sample(text, series):
    m = re.search(r"^" + re.escape(series) + r"(?:\{[^}]*\})? ([-+0-9.eE]+|NaN)$", text, re.M)
    if not m or m.group(1) == "NaN":
        return None
    return float(m.group(1))


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def pid_listening_on(url):
    port = url.split(":")[2].split("/")[0]
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
    m = re.search(r"pid=(\d+)", out)
    return int(m.group(1)) if m else None


class WriteLoad:
    """A row every 100 ms on both primaries, each through one client session fed by a pipe."""

    def __init__(self):
        self.procs = []

    def start(self):
        pg = env("GW_PG_ADMIN_PRIMARY_DSN")
        psql(pg, "CREATE TABLE IF NOT EXISTS gw_peers_load (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())")
        maria(env("GW_MARIA_ADMIN_PRIMARY_DSN"), "CREATE DATABASE IF NOT EXISTS gw_peers; CREATE TABLE IF NOT EXISTS "
              "gw_peers.load (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) DEFAULT NOW(6))")
        args, extra = maria_uri_args(env("GW_MARIA_ADMIN_PRIMARY_DSN"))
        pg_args, pg_extra = pg_client(pg)
        for client, sql, extra_env in ((pg_args, "INSERT INTO gw_peers_load DEFAULT VALUES;", pg_extra),
                                       (args, "INSERT INTO gw_peers.load () VALUES ();", extra)):
            loop = f"while :; do echo '{sql}'; sleep 0.1; done"
            feeder = subprocess.Popen(["bash", "-c", loop], stdout=subprocess.PIPE, start_new_session=True)
            sink = subprocess.Popen(client, stdin=feeder.stdout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    env={**os.environ, **extra_env}, start_new_session=True)
            self.procs += [feeder, sink]

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except OSError:
                pass
            p.wait()
        self.procs = []


def drain_seconds(read_primary, read_replica, limit=120.0):
    """Seconds from now until the replica shows the primary's newest row (None past `limit`).
    A replica without the table yet (just created on the primary) shows no row."""
    newest, start = int(read_primary()), time.monotonic()
    while time.monotonic() - start < limit:
        try:
            answer = read_replica()
        except QueryError:
            answer = ""
        seen = int(answer) if answer.isdigit() else 0  # "NULL": the table there is still empty
        if seen >= newest:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def catch_up():
    """Until both replicas show a row written on their primaries now (after a stop is undone)."""
    pg, maria_primary = env("GW_PG_ADMIN_PRIMARY_DSN"), env("GW_MARIA_ADMIN_PRIMARY_DSN")
    psql(pg, "INSERT INTO gw_peers_load DEFAULT VALUES")
    maria(maria_primary, "INSERT INTO gw_peers.load () VALUES ()")
    for db, waited in (("PostgreSQL", drain_seconds(lambda: psql(pg, "SELECT coalesce(max(id), 0) FROM gw_peers_load"),
                                                    lambda: psql(env("GW_PG_ADMIN_REPLICA2_DSN"), "SELECT coalesce(max(id), 0) FROM gw_peers_load"))),
                       ("MariaDB", drain_seconds(lambda: maria(maria_primary, "SELECT COALESCE(MAX(id), 0) FROM gw_peers.load"),
                                                 lambda: maria(env("GW_MARIA_ADMIN_REPLICA_DSN"), "SELECT COALESCE(MAX(id), 0) FROM gw_peers.load")))):
        if waited is None:
            sys.exit(f"the {db} replica did not catch up within 120 s")


def oldest_unseen_age(db):
    """Seconds since the oldest load row the replica does not show was written; 0 when none."""
    if db == "PostgreSQL":
        seen = psql(env("GW_PG_ADMIN_REPLICA2_DSN"), "SELECT coalesce(max(id), 0) FROM gw_peers_load")
        age = psql(env("GW_PG_ADMIN_PRIMARY_DSN"), "SELECT extract(epoch FROM clock_timestamp() - min(at)) FROM "
                   f"gw_peers_load WHERE id > {int(seen)}")
    else:
        seen = maria(env("GW_MARIA_ADMIN_REPLICA_DSN"), "SELECT COALESCE(MAX(id), 0) FROM gw_peers.load")
        age = maria(env("GW_MARIA_ADMIN_PRIMARY_DSN"), "SELECT TIMESTAMPDIFF(MICROSECOND, MIN(at), NOW(6)) / 1e6 FROM "
                    f"gw_peers.load WHERE id > {int(seen)}")
    return float(age) if age not in ("", "NULL") else 0.0


def burst(worst, stop):
    """Both bursts at once; `worst` gets each database's largest oldest_unseen_age until `stop`."""
    def write(client, statement, extra_env):
        statements = "".join(statement + "\n" for _ in range(2000))
        subprocess.Popen(client, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, **extra_env}).communicate(statements.encode())

    def sample_truth(db):
        while not stop.is_set():
            worst[db] = max(worst.get(db, 0.0), oldest_unseen_age(db))
            stop.wait(0.05)

    args, extra = maria_uri_args(env("GW_MARIA_ADMIN_PRIMARY_DSN"))
    pg_args, pg_extra = pg_client(env("GW_PG_ADMIN_PRIMARY_DSN"))
    threads = [threading.Thread(target=write, args=(pg_args, "INSERT INTO gw_peers_load DEFAULT VALUES;", pg_extra)),
               threading.Thread(target=write, args=(args, "INSERT INTO gw_peers.load () VALUES ();", extra)),
               threading.Thread(target=sample_truth, args=("PostgreSQL",)),
               threading.Thread(target=sample_truth, args=("MariaDB",))]
    for t in threads:
        t.start()
    return threads


class Agent:
    """One `ghostwatch run`, a probe per database, each over its delayed replica."""

    def __init__(self, work):
        self.port = 20000 + os.getpid() % 5000
        config = os.path.join(work, "ghostwatch.yaml")
        with open(config, "w") as f:
            f.write(f"""agent:
  id: peers-{os.getpid()}
  listen: 127.0.0.1:{self.port}
probes:
  - name: pg
    kind: postgres
    primary: "${{GW_PG_PRIMARY_DSN}} password=${{GW_PG_PASSWORD}}"
    targets:
      - {{name: replica-2, dsn: "${{GW_PG_REPLICA2_DSN}} password=${{GW_PG_PASSWORD}}"}}
  - name: maria
    kind: mysql
    primary: "mysql://ghostwatch:${{GW_MARIA_PASSWORD}}@${{GW_MARIA_PRIMARY_ADDR}}/"
    targets:
      - {{name: replica, dsn: "mysql://ghostwatch:${{GW_MARIA_PASSWORD}}@${{GW_MARIA_REPLICA_ADDR}}/"}}
""")
        self.log = open(os.path.join(work, "ghostwatch.log"), "w")
        self.proc = subprocess.Popen([GHOSTWATCH, "run", "--config", config], stdout=self.log, stderr=self.log)
        self.last = {}
        for _ in range(100):
            if get(self.url()):
                return
            time.sleep(0.1)
        sys.exit("ghostwatch did not start; see " + self.log.name)

    def url(self):
        return f"http://127.0.0.1:{self.port}/metrics"

    def figure(self, text, probe, target):
        labels = f'{{probe="{probe}",target="{target}"}}'
        pending = sample(text, "ghostwatch_visibility_pending_seconds" + labels)
        total = sample(text, "ghostwatch_visibility_lag_seconds_sum" + labels)
        count = sample(text, "ghostwatch_visibility_lag_seconds_count" + labels)
        key = (probe, target)
        previous = self.last.get(key)
        recent = previous[2] if previous else None
        if previous and count is not None and count > previous[1]:
            recent = (total - previous[0]) / (count - previous[1])
        if total is not None and count is not None:
            self.last[key] = (total, count, recent)
        figures = [x for x in (pending, recent) if x is not None]
        return max(figures) if figures else None

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def scenario_truth(kind, base, since_stop):
    return base + since_stop if kind in ("paused", "cut") else base


def run_scenario(kind, seconds, tools, load, agent):
    pg_replica = env("GW_PG_ADMIN_REPLICA2_DSN")
    maria_replica = env("GW_MARIA_ADMIN_REPLICA_DSN")
    saved_conninfo = None
    if not load.procs:
        load.start()
    catch_up()
    if kind == "idle":
        load.stop()
    time.sleep(2)  # the tools settle into the scenario's state
    agent.last.clear()  # what ghostwatch saw before is left behind
    for t in tools.values():
        t["read"]()
    drains, bursts, burst_over = {}, [], threading.Event()
    if kind == "burst":
        bursts = burst(drains, burst_over)
    start = time.monotonic()
    if kind == "paused":
        psql(pg_replica, "SELECT pg_wal_replay_pause()")
        maria(maria_replica, "STOP SLAVE SQL_THREAD")
    if kind == "cut":
        saved_conninfo = psql(pg_replica, "SHOW primary_conninfo")
        psql(pg_replica, "ALTER SYSTEM SET primary_conninfo = ''")
        psql(pg_replica, "SELECT pg_reload_conf()")
        maria(maria_replica, "STOP SLAVE IO_THREAD")
    cpu_before = {name: cpu_seconds(t["pids"]()) for name, t in tools.items()}
    readings = {name: [] for name in tools}
    sizes = {name: 0 for name in tools}
    try:
        while time.monotonic() - start < seconds:
            tick = time.monotonic()
            for name, t in tools.items():
                value, size = t["read"]()
                readings[name].append((tick - start, value))
                sizes[name] = max(sizes[name], size)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        elapsed = time.monotonic() - start
        cpu = {name: cpu_seconds(t["pids"]()) - cpu_before[name] for name, t in tools.items()}
        burst_over.set()
        for t in bursts:
            t.join()
        if kind == "paused":
            psql(pg_replica, "SELECT pg_wal_replay_resume()")
            sandbox("start-replication", "maria-replica")
        if kind == "cut":
            psql(pg_replica, "ALTER SYSTEM SET primary_conninfo = '" + saved_conninfo.replace("'", "''") + "'")
            psql(pg_replica, "SELECT pg_reload_conf()")
            sandbox("start-replication", "maria-replica")
    return readings, cpu, sizes, elapsed, drains


def summarize(kind, name, tool, readings, cpu, size, elapsed, drains):
    base = tool["base"]
    values = [v for _, v in readings if v is not None]
    absent = sum(1 for _, v in readings if v is None)
    truths = [scenario_truth(kind, base, t) for t, _ in readings]
    flagged = next((t for t, v in readings if v is not None and v >= FLAG_SECONDS), None)
    stop = kind in ("paused", "cut")

    def s(x):
        return "-" if x is None else f"{x:.2f} s"

    row = {
        "scenario": kind, "tool": name, "database": tool["db"],
        "truth_median": statistics.median(truths) if truths else None,
        "truth_worst": max(truths + [drains.get(tool["db"]) or 0]) if truths else None,
        "reported_median": statistics.median(values) if values else None,
        "reported_worst": max(values) if values else None, "absent": absent,
        "flagged": (flagged is not None) if stop else None, "time_to_flag": flagged if stop else None,
        "cpu_percent": 100 * cpu / elapsed if elapsed > 0 else None, "scrape_bytes": size or None,
        "readings": [[round(t, 2), v] for t, v in readings],
    }
    flag = "-" if not stop else ("yes" if flagged is not None else "no")
    to_flag = "-" if flagged is None or not stop else f"{flagged:.1f} s"
    reported = f"{s(row['reported_median'])} / {s(row['reported_worst'])}"
    if absent:
        reported += f" ({absent} of {len(readings)} absent)"
    print(f"| {kind} | {tool['db']} | {name} | {s(row['truth_median'])} / {s(row['truth_worst'])} | {reported} | "
          f"{flag} | {to_flag} | {row['cpu_percent']:.1f}% | {size if size else '-'} |")
    return row


def main():
    try:
        seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    except ValueError:
        sys.exit(f"SECONDS must be a number, got '{sys.argv[1]}'")
    if seconds <= 0:
        sys.exit(f"SECONDS must be positive, got '{sys.argv[1]}'")
    known = ["steady", "idle", "paused", "cut", "burst"]
    scenarios = sys.argv[2].split(",") if len(sys.argv) > 2 else known
    unknown = [s for s in scenarios if s not in known]
    if unknown:
        sys.exit(f"unknown scenario {', '.join(unknown)} (known: {','.join(known)})")
    pg_delay = float(env("GW_PG_DELAY_MS")) / 1000
    maria_delay = float(env("GW_MARIA_DELAY_S"))
    pg_exporter, mysqld_exporter = env("GW_PG_EXPORTER_URL"), env("GW_MYSQLD_EXPORTER_URL")
    work = tempfile.mkdtemp(prefix="ghostwatch-peers-")
    sandbox("start", "pt-heartbeat")
    args, extra = maria_uri_args(env("GW_MARIA_ADMIN_REPLICA_DSN"))
    monitor_file = os.path.join(work, "pt-heartbeat-monitor")
    server_id = maria(env("GW_MARIA_ADMIN_PRIMARY_DSN"), "SELECT @@server_id")
    monitor = subprocess.Popen(["pt-heartbeat", "--monitor", "--utc", "--database", "percona", "--interval", "1",
                                "--master-server-id", server_id, "--file", monitor_file,
                                f"h={args[2][2:]},P={args[3][2:]},u={args[4][2:]}"],
                               env={**os.environ, "MYSQL_PWD": extra["MYSQL_PWD"]}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    agent = Agent(work)
    load = WriteLoad()
    update_pid = int(open(os.path.join(env("GW_SANDBOX_DIR"), "pt-heartbeat.pid")).read().strip("\0\n "))

    def exporter(url, figure):
        def read():
            text = get(url)
            return figure(text), len(text.encode())
        return read

    def heartbeat(text):
        now, stored = sample(text, "mysql_heartbeat_now_timestamp_seconds"), sample(text, "mysql_heartbeat_stored_timestamp_seconds")
        return None if now is None or stored is None else now - stored

    def pt_monitor():
        try:
            with open(monitor_file) as f:
                m = re.match(r"\s*([0-9.]+)s", f.read())
            return (float(m.group(1)) if m else None), 0
        except OSError:
            return None, 0

    def agent_read(probe, target):
        def read():
            text = get(agent.url())
            return agent.figure(text, probe, target), len(text.encode())
        return read

    pg_exporter_pid = pid_listening_on(pg_exporter)
    mysqld_exporter_pid = pid_listening_on(mysqld_exporter)
    tools = {
        "postgres_exporter (pg_replication_lag)": {
            "db": "PostgreSQL", "base": pg_delay, "pids": lambda: [pg_exporter_pid],
            "read": exporter(pg_exporter, lambda t: sample(t, "pg_replication_lag"))},
        "ghostwatch (pg)": {"db": "PostgreSQL", "base": pg_delay, "pids": lambda: [agent.proc.pid],
                            "read": agent_read("pg", "replica-2")},
        "mysqld_exporter (heartbeat)": {
            "db": "MariaDB", "base": maria_delay, "pids": lambda: [mysqld_exporter_pid],
            "read": exporter(mysqld_exporter, heartbeat)},
        "mysqld_exporter (Seconds_Behind_Master)": {
            "db": "MariaDB", "base": maria_delay, "pids": lambda: [mysqld_exporter_pid],
            "read": exporter(mysqld_exporter, lambda t: sample(t, "mysql_slave_status_seconds_behind_master"))},
        "pt-heartbeat --monitor": {"db": "MariaDB", "base": maria_delay, "pids": lambda: [update_pid, monitor.pid],
                                   "read": pt_monitor},
        "ghostwatch (maria)": {"db": "MariaDB", "base": maria_delay, "pids": lambda: [agent.proc.pid],
                               "read": agent_read("maria", "replica")},
    }
    print(f"{len(scenarios)} scenarios of {seconds:g} s; a stop is flagged at a figure of {FLAG_SECONDS:g} s or more; "
          "one process's CPU and scrape show on each of its rows (ghostwatch: one agent for both probes; "
          "mysqld_exporter: one exporter for both figures)")
    print()
    print("| scenario | database | tool | truth median / worst | reported median / worst | flagged the stop | "
          "time to flag | CPU (% of a core) | scrape bytes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    try:
        for kind in scenarios:
            readings, cpu, sizes, elapsed, drains = run_scenario(kind, seconds, tools, load, agent)
            for name, tool in tools.items():
                rows.append(summarize(kind, name, tool, readings[name], cpu[name], sizes[name], elapsed, drains))
    finally:
        load.stop()
        agent.stop()
        monitor.terminate()
        sandbox("stop", "pt-heartbeat")
    with open(os.path.join(work, "peers.json"), "w") as f:
        json.dump(rows, f, indent=1)
    print()
    print(f"(rows as JSON: {os.path.join(work, 'peers.json')})")


if __name__ == "__main__":
    try:
        main()
    except QueryError as e:
        sys.exit(f"peers: {e}")
