#include "agent/init.h"

#include <libpq-fe.h>

#include <algorithm>
#include <functional>
#include <set>
#include <stop_token>

#include "agent/config.h"
#include "common/redact.h"
#include "common/sql_quote.h"
#include "probes/discovery/members.h"
#include "probes/mysql/mysql_connection.h"
#include "probes/mysql/mysql_replication.h"
#include "probes/mysql/mysql_uri.h"
#include "probes/postgres/pg_connection.h"
#include "probes/postgres/pg_replication.h"

namespace ghostwatch {
namespace {

struct Account {
  std::string user;
  std::optional<std::string> password;
};

// A MySQL string literal: quotes doubled, backslashes escaped (MySQL treats them as escapes).
std::string mysql_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += c == '\'' ? '\'' : '\\';
    out += c;
  }
  return out + "'";
}

std::string pg_literal(const std::string& text) { return quote_sql_identifier(text, '\''); }

// The user and password a DSN logs in with.
Account account_of(const DsnConfig& dsn, ProbeKind kind, const std::string& where) {
  Account a;
  if (kind == ProbeKind::mysql) {
    auto uri = mysql::parse_uri(dsn.dsn);
    if (!uri) throw ConfigError(where + ": " + uri.error().message);
    a.user = uri->user;
    a.password = uri->password;
  } else {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(dsn.dsn.c_str(), &error);
    PQfreemem(error);
    if (options == nullptr) throw ConfigError(where + ": bad PostgreSQL DSN");
    for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
      if (o->val == nullptr) continue;
      if (std::string(o->keyword) == "user") a.user = o->val;
      if (std::string(o->keyword) == "password") a.password = std::string(o->val);
    }
    PQconninfoFree(options);
  }
  if (dsn.password) a.password = dsn.password;
  if (a.user.empty()) throw ConfigError(where + ": the DSN names no user; init needs one to grant to");
  return a;
}

// Discovered targets log in as the template says (its user is the same for every member).
std::optional<DsnConfig> discovered_dsn(const ProbeConfig& p) {
  if (!p.discovery) return std::nullopt;
  discovery::Member example;
  example.name = "member";
  example.host = "127.0.0.1";
  example.port = p.kind == ProbeKind::postgres ? 5432 : 3306;
  auto dsn = discovery::render_dsn(p.discovery->dsn_template, example);
  if (!dsn) throw ConfigError("probe " + p.name + ", discovery.dsn_template: " + dsn.error().message);
  return DsnConfig{dsn.value(), p.discovery->password, std::nullopt};
}

// The writer: the configured primary, or, following a Patroni leader, the template's user.
Account writer_of(const ProbeConfig& p) {
  if (p.primary.dsn.empty() && p.discovery) return account_of(*discovered_dsn(p), p.kind, "probe " + p.name + ", discovery");
  return account_of(p.primary, p.kind, "probe " + p.name + ", primary");
}

bool discovers_from_primary(const ProbeConfig& p) {
  return p.discovery && std::any_of(p.discovery->sources.begin(), p.discovery->sources.end(), [](const auto& s) {
           return s.kind == DiscoverySourceConfig::Kind::from_primary;
         });
}

// Users that only read the canary: targets (which also read replication status) and DSN read paths.
struct Readers {
  std::vector<Account> targets, paths;
};

Readers readers_of(const ProbeConfig& p, const std::string& writer) {
  Readers r;
  std::set<std::string> seen{writer};
  for (const TargetConfig& t : p.targets) {
    if (t.cache) continue;
    Account a = account_of(t.dsn, p.kind, "probe " + p.name + ", target " + t.name);
    if (seen.insert(a.user).second || a.user == writer) r.targets.push_back(a);
  }
  if (auto dsn = discovered_dsn(p)) {
    Account a = account_of(*dsn, p.kind, "probe " + p.name + ", discovery");
    if (seen.insert(a.user).second || a.user == writer) r.targets.push_back(a);
  }
  for (const ReadPathConfig& path : p.read_paths) {
    if (path.kind != ReadPathConfig::Kind::dsn) continue;
    Account a = account_of(path.dsn, p.kind, "probe " + p.name + ", read path " + path.name);
    if (seen.insert(a.user).second) r.paths.push_back(a);
  }
  return r;
}

// mode: position: no schema, no table, no write anywhere; every role (primary and targets) gets
// the monitoring role only (its position functions need none, pg_stat_replication does).
void plan_postgres_position(InitPlan& plan, const ProbeConfig& p) {
  const Account writer = writer_of(p);
  std::vector<Account> accounts{writer};
  const Readers readers = readers_of(p, writer.user);
  for (const Account& a : readers.targets) {
    if (a.user != writer.user) accounts.push_back(a);
  }
  for (const Account& a : accounts) {
    const std::string r = pg::quote_identifier(a.user);
    plan.statements.push_back("DO $$ BEGIN CREATE ROLE " + r + " LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    plan.statements.push_back("GRANT pg_monitor TO " + r);
    if (a.password) plan.password_statements.push_back("ALTER ROLE " + r + " PASSWORD " + pg_literal(*a.password));
  }
}

void plan_postgres(InitPlan& plan, const ProbeConfig& p) {
  if (p.mode == ProbeMode::position) return plan_postgres_position(plan, p);
  const Account writer = writer_of(p);
  const std::string schema = pg::quote_identifier(p.schema), table = pg::canary_table(p.schema);
  auto role = [&plan, &schema](const Account& a) {
    const std::string r = pg::quote_identifier(a.user);
    plan.statements.push_back("DO $$ BEGIN CREATE ROLE " + r +
                              " LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    plan.statements.push_back("GRANT USAGE ON SCHEMA " + schema + " TO " + r);
    if (a.password) plan.password_statements.push_back("ALTER ROLE " + r + " PASSWORD " + pg_literal(*a.password));
    return r;
  };
  plan.statements.push_back("CREATE SCHEMA IF NOT EXISTS " + schema);
  plan.statements.push_back(pg::canary_table_ddl(p.schema));
  plan.statements.push_back("REVOKE ALL ON " + table + " FROM PUBLIC");
  const std::string w = role(writer);
  plan.statements.push_back("GRANT SELECT, INSERT, UPDATE ON " + table + " TO " + w);
  // discovery's from_primary: pg_stat_replication shows other roles' walsenders' addresses only
  // to pg_monitor (or pg_read_all_stats).
  if (discovers_from_primary(p)) plan.statements.push_back("GRANT pg_monitor TO " + w);
  const Readers readers = readers_of(p, writer.user);
  for (const auto* list : {&readers.targets, &readers.paths}) {
    for (const Account& a : *list) {
      if (a.user == writer.user) continue;
      plan.statements.push_back("GRANT SELECT ON " + table + " TO " + role(a));
    }
  }
}

void plan_mysql(InitPlan& plan, const ProbeConfig& p, const std::string& host) {
  const Account writer = writer_of(p);
  const std::string table = mysql::canary_table(p.schema);
  auto account = [&](const Account& a) {
    const std::string name = mysql_literal(a.user) + "@" + mysql_literal(host);
    plan.statements.push_back("CREATE USER IF NOT EXISTS " + name);
    if (a.password) plan.password_statements.push_back("ALTER USER " + name + " IDENTIFIED BY " + mysql_literal(*a.password));
    return name;
  };
  // SHOW REPLICA STATUS, for the lag the replica reports: MariaDB 10.5+ calls the right
  // SLAVE MONITOR; MySQL calls it REPLICATION CLIENT.
  const std::string monitor = plan.dialect == SqlDialect::mariadb ? "SLAVE MONITOR" : "REPLICATION CLIENT";
  if (p.mode == ProbeMode::position) {
    // No database, no table, no write: @@gtid_binlog_pos and @@gtid_executed need no right,
    // SHOW REPLICA STATUS (received position, reported lag) the monitoring one.
    std::set<std::string> granted{writer.user};
    plan.statements.push_back("GRANT " + monitor + " ON *.* TO " + account(writer));
    for (const Account& a : readers_of(p, writer.user).targets) {
      if (granted.insert(a.user).second) plan.statements.push_back("GRANT " + monitor + " ON *.* TO " + account(a));
    }
    return;
  }
  plan.statements.push_back("CREATE DATABASE IF NOT EXISTS " + mysql::quote_identifier(p.schema));
  plan.statements.push_back(mysql::canary_table_ddl(p.schema));
  const std::string w = account(writer);
  plan.statements.push_back("GRANT SELECT, INSERT, UPDATE ON " + table + " TO " + w);
  const Readers readers = readers_of(p, writer.user);
  bool writer_reads_targets = false;
  for (const Account& a : readers.targets) {
    if (a.user == writer.user) {
      writer_reads_targets = true;
      continue;
    }
    const std::string name = account(a);
    plan.statements.push_back("GRANT SELECT ON " + table + " TO " + name);
    plan.statements.push_back("GRANT " + monitor + " ON *.* TO " + name);
  }
  if (writer_reads_targets) plan.statements.push_back("GRANT " + monitor + " ON *.* TO " + w);
  // discovery's from_primary: SHOW REPLICA HOSTS (MariaDB) or SHOW REPLICAS (MySQL).
  if (discovers_from_primary(p)) {
    const char* hosts = plan.dialect == SqlDialect::mariadb ? "REPLICATION MASTER ADMIN" : "REPLICATION SLAVE";
    plan.statements.push_back(std::string("GRANT ") + hosts + " ON *.* TO " + w);
  }
  for (const Account& a : readers.paths) plan.statements.push_back("GRANT SELECT ON " + table + " TO " + account(a));
}

const char* dialect_name(SqlDialect d) {
  switch (d) {
    case SqlDialect::postgres: return "PostgreSQL";
    case SqlDialect::mariadb: return "MariaDB";
    case SqlDialect::mysql: return "MySQL";
  }
  return "?";
}

}  // namespace

InitPlan plan_init(const ProbeConfig& probe, SqlDialect dialect, const std::string& mysql_user_host) {
  InitPlan plan;
  plan.probe = probe.name;
  plan.dialect = dialect;
  plan.primary = probe.primary.dsn.empty() ? "the Patroni leader" : probe.primary.redacted();
  plan.position_mode = probe.mode == ProbeMode::position;
  if (dialect == SqlDialect::postgres) plan_postgres(plan, probe);
  else plan_mysql(plan, probe, mysql_user_host);
  return plan;
}

std::string render_init(const InitPlan& plan) {
  std::string out = "-- probe " + plan.probe + " (" + dialect_name(plan.dialect) + "), primary " + plan.primary + "\n";
  out += "-- Run as an administrator on the primary; replicas receive all of it by replication.\n";
  if (plan.position_mode) {
    out += "-- mode: position: no canary table and no write; the roles need monitoring rights only.\n";
  }
  for (const std::string& s : plan.statements) out += s + ";\n";
  if (!plan.password_statements.empty()) {
    out += "-- Then set the passwords the config uses (not printed; `ghostwatch init --apply` sets them).\n";
  }
  return out;
}

namespace {

std::string run_all(const std::vector<std::string>& statements, const std::function<Status(const std::string&)>& run,
                    bool secret) {
  for (const std::string& s : statements) {
    if (Status st = run(s); !st) {
      return scrub((secret ? std::string("setting a password") : "'" + s + "'") + " failed: " + st.error().message);
    }
  }
  return "";
}

// The statements, then the passwords; "" or the first error.
std::string run_plan(const InitPlan& plan, const std::function<Status(const std::string&)>& run) {
  std::string e = run_all(plan.statements, run, false);
  return e.empty() ? run_all(plan.password_statements, run, true) : e;
}

}  // namespace

std::string apply_init(const ProbeConfig& probe, const std::string& admin_dsn, const std::string& mysql_user_host) {
  std::stop_source never;
  const bool admin_mysql = admin_dsn.rfind("mysql://", 0) == 0 || admin_dsn.rfind("mariadb://", 0) == 0;
  if (admin_mysql != (probe.kind == ProbeKind::mysql)) {
    return "--admin-dsn is a " + std::string(admin_mysql ? "MySQL" : "PostgreSQL") + " DSN but probe " + probe.name +
           " is " + to_string(probe.kind) + " (use --probe to pick one)";
  }
  register_secret(dsn_password(admin_dsn));
  if (probe.kind == ProbeKind::postgres) {
    auto conn = pg::Connection::open({admin_dsn, std::nullopt, std::chrono::seconds(10), std::chrono::seconds(30)},
                                     never.get_token());
    if (!conn) return "cannot connect as the administrator: " + conn.error().message;
    const InitPlan plan = plan_init(probe, SqlDialect::postgres, mysql_user_host);
    return run_plan(plan, [&conn](const std::string& sql) -> Status {
      auto r = conn.value()->exec(sql);
      if (!r) return r.error();
      return ok_status();
    });
  }
  auto uri = mysql::parse_uri(admin_dsn);
  if (!uri) return "--admin-dsn: " + uri.error().message;
  if (uri->password) register_secret(*uri->password);
  auto conn = mysql::Connection::open({uri.value(), std::nullopt, std::chrono::seconds(10), std::chrono::seconds(30)},
                                      never.get_token());
  if (!conn) return "cannot connect as the administrator: " + conn.error().message;
  const SqlDialect dialect = conn.value()->flavor() == mysql::Flavor::mariadb ? SqlDialect::mariadb : SqlDialect::mysql;
  const InitPlan plan = plan_init(probe, dialect, mysql_user_host);
  return run_plan(plan, [&conn](const std::string& sql) -> Status {
    auto r = conn.value()->query(sql);
    if (!r) return r.error();
    return ok_status();
  });
}

}  // namespace ghostwatch
