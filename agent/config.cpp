#include "agent/config.h"

#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "agent/duration.h"
#include "agent/slo.h"
#include "agent/yaml_cursor.h"
#include "common/log.h"
#include "common/parse_number.h"
#include "common/redact.h"
#include "common/small_file.h"
#include "probes/mysql/mysql_uri.h"
#include "probes/postgres/pg_connection.h"

namespace ghostwatch {
namespace {

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "ghostwatch";
  return buf;
}

std::string read_password_file(const Cursor& at) {
  const std::string path = at.as_string();
  auto text = read_small_file(path, 64 * 1024);
  if (!text && text.error().code == "unreadable") at.fail("cannot read password file '" + path + "'");
  if (!text) at.fail("password file: " + text.error().message);
  std::string password = text.value().substr(0, text.value().find('\n'));
  while (!password.empty() && (password.back() == '\r' || password.back() == ' ')) password.pop_back();
  if (password.empty()) at.fail("password file '" + path + "' is empty");
  return password;
}

// Checks the DSN's syntax now, so that a typo is a config error with a line number rather than
// a connection error at run time.
void check_dsn_syntax(const Cursor& at, const std::string& dsn, ProbeKind kind) {
  if (kind == ProbeKind::mysql) {
    auto uri = mysql::parse_uri(dsn);
    if (!uri) at.fail("bad MySQL URI: " + uri.error().message);
    if (uri->password) register_secret(*uri->password);
    return;
  }
  if (Status parsed = pg::check_conninfo(dsn); !parsed) at.fail("bad PostgreSQL DSN: " + parsed.error().message);
}

DsnConfig parse_dsn_value(const Cursor& dsn_at, const Cursor* password_file_at, ProbeKind kind) {
  DsnConfig d;
  d.dsn = dsn_at.as_string();
  if (d.dsn.empty()) dsn_at.fail("the DSN is empty");
  register_secret(dsn_password(d.dsn));
  check_dsn_syntax(dsn_at, d.dsn, kind);
  if (password_file_at != nullptr) {
    d.password = read_password_file(*password_file_at);
    d.password_file = password_file_at->as_string();
    register_secret(*d.password);
  }
  return d;
}

// primary: "dsn"  or  primary: {dsn: "...", password_file: /path}
DsnConfig parse_primary(const Cursor& at, ProbeKind kind) {
  if (at.node().IsScalar()) return parse_dsn_value(at, nullptr, kind);
  at.check_keys({"dsn", "password_file"});
  const Cursor pf = at.child("password_file");
  return parse_dsn_value(at.require("dsn"), at.has("password_file") ? &pf : nullptr, kind);
}

const std::regex& label_safe() {
  static const std::regex re("[A-Za-z0-9_.:-]{1,64}");
  return re;
}

void check_name(const Cursor& at, const std::string& name) {
  if (!std::regex_match(name, label_safe())) {
    at.fail("name '" + name + "' must be 1-64 characters of letters, digits, '_', '.', ':' or '-'");
  }
}

// "host:port" of a cache server.
void parse_address(const Cursor& at, CacheTargetConfig& c) {
  const std::string text = at.as_string();
  const auto colon = text.rfind(':');
  auto port = colon == std::string::npos ? std::nullopt : parse_number<int>(std::string_view(text).substr(colon + 1));
  if (colon == 0 || !port || *port < 1 || *port > 65535) at.fail("expected host:port, e.g. 127.0.0.1:6379");
  c.host = text.substr(0, colon);
  c.port = *port;
}

// tls: {ca_file, cert_file, key_file, server_name}, every key optional: `tls: {}` verifies the
// server against the system's CAs and its host name. The files are loaded now, so that a wrong
// path or a key that does not match its certificate is a config error, not a target down.
TlsClientFiles parse_tls_client(const Cursor& at) {
  at.expect_map();
  at.check_keys({"ca_file", "cert_file", "key_file", "server_name"});
  TlsClientFiles f;
  for (auto [key, field] : {std::pair{"ca_file", &f.ca_file}, {"cert_file", &f.cert_file}, {"key_file", &f.key_file},
                            {"server_name", &f.server_name}}) {
    if (!at.has(key)) continue;
    *field = at.child(key).as_string();
    if (field->empty()) at.child(key).fail("expected a non-empty value or no key at all");
  }
  if (f.cert_file.empty() != f.key_file.empty()) {
    at.child(f.cert_file.empty() ? "key_file" : "cert_file").fail("cert_file and key_file go together");
  }
  auto loaded = tls_client_context(f);  // shared with the readers: loaded once per set of files
  if (!loaded) {
    const std::string& why = loaded.error().message;
    for (const char* key : {"ca_file", "cert_file", "key_file"}) {
      if (why.rfind(std::string("tls.") + key + ":", 0) == 0) at.child(key).fail(why.substr(why.find(':') + 2));
    }
    at.fail(why);
  }
  return f;
}

CacheTargetConfig parse_cache_target(const Cursor& at) {
  CacheTargetConfig c;
  const bool redis = at.has("redis");
  c.kind = redis ? CacheTargetConfig::Kind::redis : CacheTargetConfig::Kind::memcached;
  parse_address(at.child(redis ? "redis" : "memcached"), c);
  c.key = at.require("key").as_string();
  if (c.key.empty()) at.child("key").fail("the key template is empty");
  if (at.has("format")) {
    c.format = static_cast<CacheTargetConfig::Format>(at.child("format").as_choice({"plain", "json", "hash"}));
  }
  if (c.format == CacheTargetConfig::Format::hash && !redis) at.child("format").fail("hash is a Redis format");
  if (c.format == CacheTargetConfig::Format::plain && at.has("field")) {
    at.child("field").fail("'field' goes with format json (a JSON pointer) or hash (a hash field)");
  }
  if (c.format != CacheTargetConfig::Format::plain) {
    c.field = at.require("field").as_string();
    if (c.format == CacheTargetConfig::Format::json) {
      try {
        nlohmann::json::json_pointer check(c.field);
      } catch (const std::exception&) {
        at.child("field").fail("bad JSON pointer '" + c.field + "' (e.g. /seq)");
      }
    }
  }
  if (at.has("mode")) c.mode = static_cast<CacheTargetConfig::Mode>(at.child("mode").as_choice({"update", "invalidate"}));
  for (const char* key : {"db", "password", "password_file"}) {
    if (at.has(key) && !redis) at.child(key).fail(std::string("'") + key + "' goes with redis");
  }
  if (at.has("db")) c.db = static_cast<int>(at.child("db").as_int(0, 1024));
  if (at.has("password")) c.password = at.child("password").as_string();
  if (at.has("password_file")) c.password = read_password_file(at.child("password_file"));
  if (c.password) register_secret(*c.password);
  if (at.has("tls") || (at.node()["tls"].IsDefined() && at.node()["tls"].IsNull())) {
    c.tls = at.has("tls") ? parse_tls_client(at.child("tls")) : TlsClientFiles{};
  }
  return c;
}

TargetConfig parse_target(const Cursor& at, ProbeKind kind) {
  at.check_keys({"name", "dsn", "password_file", "redis", "memcached", "key", "format", "field", "mode", "db",
                 "password", "tls"});
  TargetConfig t;
  const Cursor name = at.require("name");
  t.name = name.as_string();
  check_name(name, t.name);
  if (int(at.has("dsn")) + int(at.has("redis")) + int(at.has("memcached")) != 1) {
    at.fail("a target needs exactly one of 'dsn' (a replica), 'redis' or 'memcached' (a cache)");
  }
  if (!at.has("dsn")) {
    t.cache = parse_cache_target(at);
    return t;
  }
  for (const char* key : {"key", "format", "field", "mode", "db", "password", "tls"}) {
    if (at.has(key)) at.child(key).fail(std::string("'") + key + "' goes with a cache target (redis or memcached)");
  }
  const Cursor pf = at.child("password_file");
  t.dsn = parse_dsn_value(at.require("dsn"), at.has("password_file") ? &pf : nullptr, kind);
  return t;
}

void check_at_least(const Cursor& at, Duration value, Duration min) {
  if (value < min) at.fail(format_duration(value) + " is below the minimum of " + format_duration(min));
}

const std::vector<std::string>& default_read_delays() {
  static const std::vector<std::string> d{"0ms", "10ms", "50ms", "100ms", "250ms", "1s"};
  return d;
}

std::vector<ReadDelay> parse_read_delays(const Cursor& at) {
  std::vector<ReadDelay> delays;
  if (!at.node().IsDefined() || at.node().IsNull()) {
    delays = default_read_pattern();
  } else {
    at.expect_sequence();
    if (at.node().size() == 0) at.fail("at least one delay is needed");
    for (std::size_t i = 0; i < at.node().size(); ++i) {
      const Cursor item = at.item(i);
      const Duration d = item.as_duration();
      for (const ReadDelay& seen : delays) {
        if (seen.delay == d) item.fail("delay " + item.node().Scalar() + " is listed twice");
      }
      delays.push_back({d, item.node().Scalar()});
    }
  }
  // Ascending, so that the report can find the shortest safe delay.
  std::sort(delays.begin(), delays.end(), [](const ReadDelay& a, const ReadDelay& b) { return a.delay < b.delay; });
  return delays;
}

void parse_http_read_path(const Cursor& at, ReadPathConfig& r) {
  r.kind = ReadPathConfig::Kind::http;
  r.http_url = at.child("http").as_string();
  if (r.http_url.rfind("http://", 0) != 0 && r.http_url.rfind("https://", 0) != 0) {
    at.child("http").fail("expected an http:// or https:// URL template");
  }
  if (at.has("seq") == at.has("seq_regex")) at.fail("an http read path needs exactly one of 'seq' (a JSON pointer) or 'seq_regex'");
  if (at.has("seq")) {
    r.seq_pointer = at.child("seq").as_string();
    try {
      nlohmann::json::json_pointer check(r.seq_pointer);
    } catch (const std::exception& e) {
      at.child("seq").fail("bad JSON pointer '" + r.seq_pointer + "' (e.g. /seq or /canary/seq)");
    }
  } else {
    r.seq_regex = at.child("seq_regex").as_string();
    try {
      if (std::regex(r.seq_regex).mark_count() < 1) at.child("seq_regex").fail("the regular expression needs a group (...) around the seq");
    } catch (const std::regex_error& e) {
      at.child("seq_regex").fail(std::string("bad regular expression: ") + e.what());
    }
  }
}

ReadPathConfig parse_read_path(const Cursor& at, const ProbeConfig& probe) {
  at.check_keys({"name", "dsn", "password_file", "connection", "pool_size", "targets", "policy", "http", "seq",
                 "seq_regex", "max_concurrent", "session"});
  ReadPathConfig r;
  const Cursor name = at.require("name");
  r.name = name.as_string();
  check_name(name, r.name);
  const int kinds = int(at.has("dsn")) + int(at.has("targets")) + int(at.has("http"));
  if (kinds != 1) at.fail("a read path needs exactly one of 'dsn', 'targets' or 'http'");
  auto only_with = [&](const char* key, bool allowed, const char* what) {
    if (at.has(key) && !allowed) at.child(key).fail(std::string("'") + key + "' goes with " + what);
  };
  only_with("password_file", at.has("dsn"), "'dsn'");
  only_with("connection", at.has("dsn"), "'dsn'");
  only_with("pool_size", at.has("dsn"), "'dsn' and 'connection: pool'");
  only_with("policy", at.has("targets"), "'targets'");
  only_with("seq", at.has("http"), "'http'");
  only_with("seq_regex", at.has("http"), "'http'");
  only_with("session", at.has("dsn"), "'dsn' (a session path writes and reads through one connection)");
  if (at.has("session")) r.session = at.child("session").as_bool();
  if (at.has("max_concurrent")) r.max_concurrent = static_cast<int>(at.child("max_concurrent").as_int(1, 256));
  if (at.has("dsn")) {
    r.kind = ReadPathConfig::Kind::dsn;
    const Cursor pf = at.child("password_file");
    r.dsn = parse_dsn_value(at.child("dsn"), at.has("password_file") ? &pf : nullptr, probe.kind);
    if (at.has("connection")) {
      r.connection = at.child("connection").as_choice({"per_read", "pool"}) == 0 ? ReadPathConfig::Connection::per_read
                                                                                  : ReadPathConfig::Connection::pool;
    }
    only_with("pool_size", r.connection == ReadPathConfig::Connection::pool, "'connection: pool'");
    if (at.has("pool_size")) r.pool_size = static_cast<int>(at.child("pool_size").as_int(1, 64));
  } else if (at.has("targets")) {
    r.kind = ReadPathConfig::Kind::targets;
    const Cursor targets = at.child("targets");
    targets.expect_sequence();
    if (targets.node().size() == 0) targets.fail("name at least one of the probe's targets");
    for (std::size_t i = 0; i < targets.node().size(); ++i) {
      const std::string t = targets.item(i).as_string();
      const bool known = std::any_of(probe.targets.begin(), probe.targets.end(),
                                     [&t](const TargetConfig& c) { return c.name == t; });
      if (!known) targets.item(i).fail("'" + t + "' is not a target of probe " + probe.name);
      const bool cache = std::any_of(probe.targets.begin(), probe.targets.end(),
                                     [&t](const TargetConfig& c) { return c.name == t && c.cache; });
      if (cache) targets.item(i).fail("'" + t + "' is a cache; read paths read databases");
      r.targets.push_back(t);
    }
    if (at.has("policy")) {
      r.policy = at.child("policy").as_choice({"round_robin", "random"}) == 0 ? ReadPathConfig::Policy::round_robin
                                                                            : ReadPathConfig::Policy::random;
    }
  } else {
    parse_http_read_path(at, r);
  }
  return r;
}

// Checked against a short list: the writer's session must not be able to do more than change
// what its commits (or reads) wait for.
std::map<std::string, std::string> parse_session_settings(const Cursor& at, ProbeKind kind) {
  at.expect_map();
  std::map<std::string, std::string> settings;
  const auto& allowed = allowed_session_settings(kind);
  for (const auto& entry : at.node()) {
    const std::string name = entry.first.as<std::string>();
    const Cursor value = at.child(name);
    auto known = std::find_if(allowed.begin(), allowed.end(), [&name](const AllowedSetting& a) { return name == a.name; });
    if (known == allowed.end()) {
      std::string names;
      for (const AllowedSetting& a : allowed) names += std::string(names.empty() ? "" : ", ") + a.name;
      value.fail("'" + name + "' is not a session setting a " + to_string(kind) + " probe may set (allowed: " + names + ")");
    }
    if (known->values.empty()) {
      settings[name] = std::to_string(value.as_int(0, 15));
      continue;
    }
    const std::string text = value.as_string();
    auto match = std::find_if(known->values.begin(), known->values.end(), [&text](const std::string& v) {
      return strcasecmp(v.c_str(), text.c_str()) == 0;
    });
    if (match == known->values.end()) {
      std::string values;
      for (const std::string& v : known->values) values += (values.empty() ? "" : ", ") + v;
      value.fail("'" + text + "' is not a value of " + name + " (known: " + values + ")");
    }
    settings[name] = *match;
  }
  return settings;
}

void parse_read_your_writes(const Cursor& at, ProbeConfig& p) {
  if (!at.has("read_paths")) {
    for (const char* key : {"read_delays", "stale_target"}) {
      if (at.has(key)) at.child(key).fail(std::string("'") + key + "' goes with 'read_paths'");
    }
    return;
  }
  const Cursor paths = at.child("read_paths");
  paths.expect_sequence();
  std::set<std::string> names;
  for (std::size_t i = 0; i < paths.node().size(); ++i) {
    ReadPathConfig r = parse_read_path(paths.item(i), p);
    if (!names.insert(r.name).second) paths.item(i).child("name").fail("duplicate read path name '" + r.name + "'");
    p.read_paths.push_back(std::move(r));
  }
  p.read_delays = parse_read_delays(at.child("read_delays"));
  if (at.has("stale_target")) {
    p.stale_target = at.child("stale_target").as_double();
    if (!(p.stale_target > 0 && p.stale_target < 1)) at.child("stale_target").fail("expected a ratio between 0 and 1, e.g. 0.001");
  }
}

WaitMode parse_wait_mode(const Cursor& at, ProbeKind kind) {
  const std::string mode = at.as_string();
  if (mode == "poll") return WaitMode::poll;
  if (mode != "server") at.fail("unknown wait mode '" + mode + "' (known: poll, server)");
  if (kind != ProbeKind::mysql) at.fail("wait: server needs a mysql probe (MASTER_GTID_WAIT, WAIT_FOR_EXECUTED_GTID_SET)");
  return WaitMode::server;
}

// mode: position reads positions only: nothing carries a canary to read back or to cache.
ProbeMode parse_probe_mode(const Cursor& at, const ProbeConfig& p) {
  const Cursor mode = at.child("mode");
  if (mode.as_choice({"canary", "position"}) == 0) return ProbeMode::canary;
  if (!p.read_paths.empty()) at.child("read_paths").fail("read paths need mode: canary (they read the canary back)");
  for (std::size_t i = 0; i < p.targets.size(); ++i) {
    if (p.targets[i].cache) at.child("targets").item(i).fail("a cache target needs mode: canary (a cache has no position)");
  }
  if (p.wait == WaitMode::server) at.child("wait").fail("wait: server needs mode: canary");
  return ProbeMode::position;
}

Duration parse_source_interval(const Cursor& at) {
  if (!at.has("interval")) return 10s;
  const Duration d = at.child("interval").as_duration();
  check_at_least(at.child("interval"), d, 100ms);
  return d;
}

DiscoverySourceConfig parse_patroni_source(const Cursor& at) {
  at.check_keys({"urls", "interval", "ca_file", "username", "password_file"});
  DiscoverySourceConfig s;
  s.kind = DiscoverySourceConfig::Kind::patroni;
  const Cursor urls = at.require("urls");
  urls.expect_sequence();
  if (urls.node().size() == 0) urls.fail("name at least one member's REST API (http://host:8008)");
  for (std::size_t i = 0; i < urls.node().size(); ++i) {
    std::string url = urls.item(i).as_string();
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
      urls.item(i).fail("'" + url + "' is not an http:// or https:// URL");
    }
    while (!url.empty() && url.back() == '/') url.pop_back();
    s.urls.push_back(url);
  }
  if (at.has("ca_file")) s.ca_file = at.child("ca_file").as_string();
  if (at.has("username")) s.username = at.child("username").as_string();
  if (at.has("password_file")) {
    if (s.username.empty()) at.child("password_file").fail("a password goes with a 'username'");
    s.password = read_password_file(at.child("password_file"));
    s.password_file = at.child("password_file").as_string();
    register_secret(*s.password);
  }
  s.interval = parse_source_interval(at);
  return s;
}

DiscoverySourceConfig parse_from_primary_source(const Cursor& at, ProbeKind kind) {
  at.check_keys({"interval", "port", "ports"});
  DiscoverySourceConfig s;
  s.kind = DiscoverySourceConfig::Kind::from_primary;
  s.interval = parse_source_interval(at);
  if (kind == ProbeKind::mysql) {
    for (const char* key : {"port", "ports"}) {
      if (at.has(key)) at.child(key).fail("MySQL/MariaDB replicas report their own port (report_port)");
    }
    return s;
  }
  s.port = at.has("port") ? static_cast<int>(at.child("port").as_int(1, 65535)) : 5432;
  if (at.has("ports")) {
    const Cursor ports = at.child("ports");
    ports.expect_map();
    for (auto it = ports.node().begin(); it != ports.node().end(); ++it) {
      const std::string name = it->first.Scalar();
      s.ports[name] = static_cast<int>(ports.child(name).as_int(1, 65535));
    }
  }
  return s;
}

// dns: {name: ..., port: N} (A/AAAA) or {srv: ...} (SRV), optionally from `server: host:port`.
DiscoverySourceConfig parse_dns_source(const Cursor& at, ProbeKind kind) {
  at.check_keys({"name", "port", "srv", "server", "interval"});
  DiscoverySourceConfig s;
  s.kind = DiscoverySourceConfig::Kind::dns;
  if (at.has("name") == at.has("srv")) at.fail("name either 'name' (A/AAAA records, with 'port') or 'srv' (SRV records)");
  if (at.has("name")) {
    s.name = at.child("name").as_string();
    if (s.name.empty()) at.child("name").fail("the name is empty");
    s.port = at.has("port") ? static_cast<int>(at.child("port").as_int(1, 65535)) : kind == ProbeKind::postgres ? 5432 : 3306;
  } else {
    if (at.has("port")) at.child("port").fail("SRV records carry their own ports");
    s.srv = at.child("srv").as_string();
    if (s.srv.empty()) at.child("srv").fail("the name is empty");
  }
  if (at.has("server")) {
    s.server = at.child("server").as_string();
    static const std::regex host_port(R"((\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?)");
    if (!std::regex_match(s.server, host_port)) at.child("server").fail("expected an IP address and port, such as 127.0.0.1:8600");
  }
  s.interval = parse_source_interval(at);
  return s;
}

DiscoverySourceConfig parse_file_source(const Cursor& at) {
  at.check_keys({"path", "interval"});
  DiscoverySourceConfig s;
  s.kind = DiscoverySourceConfig::Kind::file;
  s.path = at.require("path").as_string();
  if (s.path.empty()) at.child("path").fail("the path is empty");
  s.interval = parse_source_interval(at);
  return s;
}

// discovery: {dsn_template, password_file, remove_after, patroni, from_primary, dns, file}
DiscoveryConfig parse_discovery(const Cursor& at, ProbeKind kind) {
  at.check_keys({"dsn_template", "password_file", "remove_after", "patroni", "from_primary", "dns", "file"});
  DiscoveryConfig d;
  const Cursor tmpl = at.require("dsn_template");
  d.dsn_template = tmpl.as_string();
  if (d.dsn_template.find("{host}") == std::string::npos && d.dsn_template.find("{address}") == std::string::npos) {
    tmpl.fail("the template needs {host} (or {address})");
  }
  register_secret(dsn_password(d.dsn_template));
  if (at.has("password_file")) {
    d.password = read_password_file(at.child("password_file"));
    d.password_file = at.child("password_file").as_string();
    register_secret(*d.password);
  }
  if (at.has("remove_after")) d.remove_after = static_cast<int>(at.child("remove_after").as_int(1, 1000));
  if (at.has("patroni")) {
    if (kind != ProbeKind::postgres) at.child("patroni").fail("Patroni runs PostgreSQL clusters: a postgres probe's source");
    d.sources.push_back(parse_patroni_source(at.child("patroni")));
  }
  if (at.node()["from_primary"].IsDefined()) {
    // `from_primary: {}` and a bare `from_primary:` both take the defaults.
    const Cursor fp = at.child("from_primary");
    if (!fp.node().IsNull() && !fp.node().IsMap()) fp.fail("expected a mapping such as {interval: 10s}");
    d.sources.push_back(parse_from_primary_source(fp.node().IsNull() ? Cursor("", YAML::Node(YAML::NodeType::Map), fp.path()) : fp, kind));
  }
  if (at.has("dns")) d.sources.push_back(parse_dns_source(at.child("dns"), kind));
  if (at.has("file")) d.sources.push_back(parse_file_source(at.child("file")));
  if (d.sources.empty()) at.fail("name at least one source: patroni, from_primary, dns or file");
  return d;
}

// `primary:` may be left out when Patroni names the leader: the writer then follows it.
void check_primary(const Cursor& at, const ProbeConfig& p) {
  if (!p.primary.dsn.empty()) return;
  const bool patroni = p.discovery && std::any_of(p.discovery->sources.begin(), p.discovery->sources.end(), [](const auto& s) {
                         return s.kind == DiscoverySourceConfig::Kind::patroni;
                       });
  if (!patroni) at.require("primary");
  const bool from_primary = std::any_of(p.discovery->sources.begin(), p.discovery->sources.end(), [](const auto& s) {
    return s.kind == DiscoverySourceConfig::Kind::from_primary;
  });
  if (from_primary) at.child("discovery").child("from_primary").fail("from_primary asks the primary: set 'primary:'");
  if (at.has("mode") && at.child("mode").as_string() == "position") {
    at.child("mode").fail("mode: position samples a fixed primary: set 'primary:'");
  }
}

ProbeConfig parse_probe(const Cursor& at) {
  at.check_keys({"name", "kind", "primary", "targets", "discovery", "schema", "database", "interval", "poll_interval",
                 "idle_poll_interval", "prediction", "wait", "mode", "timeout", "connect_timeout", "query_timeout",
                 "read_paths", "read_delays", "stale_target", "session_settings"});
  ProbeConfig p;
  const Cursor name = at.require("name");
  p.name = name.as_string();
  check_name(name, p.name);
  const Cursor kind = at.require("kind");
  if (kind.as_string() == "postgres") p.kind = ProbeKind::postgres;
  else if (kind.as_string() == "mysql") p.kind = ProbeKind::mysql;
  else kind.fail("unknown probe kind '" + kind.as_string() + "' (known: postgres, mysql, reconcile)");
  if (at.has("primary")) p.primary = parse_primary(at.child("primary"), p.kind);
  // Where the canary table lives: a schema in PostgreSQL, a database in MySQL.
  const char* container = p.kind == ProbeKind::postgres ? "schema" : "database";
  const char* other = p.kind == ProbeKind::postgres ? "database" : "schema";
  if (at.has(other)) {
    at.child(other).fail(std::string("a ") + to_string(p.kind) + " probe takes '" + container + "', not '" + other + "'");
  }
  if (at.has(container)) {
    p.schema = at.child(container).as_string();
    if (p.schema.empty() || p.schema.size() > 64) at.child(container).fail("the name must be 1-64 characters");
  }
  struct Timing {
    const char* key;
    Duration* value;
    Duration min;
  };
  for (const Timing& t : {Timing{"interval", &p.interval, 10ms}, Timing{"poll_interval", &p.poll_interval, 1ms},
                          Timing{"idle_poll_interval", &p.idle_poll_interval, 1ms},
                          Timing{"timeout", &p.timeout, 10ms}, Timing{"connect_timeout", &p.connect_timeout, 10ms},
                          Timing{"query_timeout", &p.query_timeout, 10ms}}) {
    if (!at.has(t.key)) continue;
    *t.value = at.child(t.key).as_duration();
    check_at_least(at.child(t.key), *t.value, t.min);
  }
  if (p.timeout < p.poll_interval) at.child("timeout").fail("timeout must be at least poll_interval");
  if (at.has("wait")) p.wait = parse_wait_mode(at.child("wait"), p.kind);
  if (at.has("prediction")) p.prediction = at.child("prediction").as_choice({"on", "off"}) == 0;
  if (!at.has("idle_poll_interval")) p.idle_poll_interval = std::max(p.idle_poll_interval, p.poll_interval);
  else if (p.idle_poll_interval < p.poll_interval) {
    at.child("idle_poll_interval").fail("idle_poll_interval must be at least poll_interval");
  }
  if (at.node()["discovery"].IsDefined()) p.discovery = parse_discovery(at.child("discovery"), p.kind);
  check_primary(at, p);
  const Cursor targets = p.discovery && !at.has("targets") ? Cursor(at.child("targets")) : at.require("targets");
  if (at.has("targets")) targets.expect_sequence();
  if (at.has("targets") && targets.node().size() == 0 && !p.discovery) targets.fail("a probe needs at least one target");
  std::set<std::string> seen;
  for (std::size_t i = 0; at.has("targets") && i < targets.node().size(); ++i) {
    TargetConfig t = parse_target(targets.item(i), p.kind);
    if (!seen.insert(t.name).second) targets.item(i).child("name").fail("duplicate target name '" + t.name + "'");
    p.targets.push_back(std::move(t));
  }
  parse_read_your_writes(at, p);
  if (at.has("mode")) p.mode = parse_probe_mode(at, p);
  if (at.has("session_settings")) p.session_settings = parse_session_settings(at.child("session_settings"), p.kind);
  return p;
}

ReconcileConfig parse_reconcile(const Cursor& at, const std::vector<ProbeConfig>& probes) {
  at.check_keys({"name", "kind", "cache", "source", "grace", "every", "rate_limit", "batch", "connect_timeout",
                 "query_timeout"});
  ReconcileConfig r;
  const Cursor name = at.require("name");
  r.name = name.as_string();
  check_name(name, r.name);
  const Cursor cache = at.require("cache");
  cache.check_keys({"redis", "memcached", "key", "format", "field", "db", "password", "password_file", "tls"});
  if (int(cache.has("redis")) + int(cache.has("memcached")) != 1) cache.fail("the cache needs exactly one of 'redis' or 'memcached'");
  r.cache = parse_cache_target(cache);
  // libmemcached, which the reconciler's memcached side uses, has no TLS.
  if (r.cache.tls && r.cache.kind == CacheTargetConfig::Kind::memcached) {
    cache.child("tls").fail("the reconciler reads memcached through libmemcached, which has no TLS; use a Redis cache or a plain connection");
  }
  const auto first = r.cache.key.find("{id}");
  if (first == std::string::npos || r.cache.key.find("{id}", first + 1) != std::string::npos) {
    cache.child("key").fail("the key pattern needs {id} exactly once, e.g. user:{id}");
  }
  const Cursor source = at.require("source");
  source.check_keys({"dsn", "password_file", "probe", "table", "id_column", "version_column", "version_type"});
  if (source.has("dsn") && source.has("probe")) source.fail("the source takes 'dsn' or 'probe', not both");
  if (!source.has("dsn")) {
    // The primary of the named probe, or of the only postgres/mysql probe there is.
    if (source.has("password_file")) source.child("password_file").fail("'password_file' goes with 'dsn'");
    if (!source.has("probe") && probes.size() != 1) {
      source.fail("name the source: 'dsn', or 'probe' (one of the config's " + std::to_string(probes.size()) +
                  " postgres/mysql probes, whose primary to read)");
    }
    const std::string probe = source.has("probe") ? source.child("probe").as_string() : probes.front().name;
    auto it = std::find_if(probes.begin(), probes.end(), [&probe](const ProbeConfig& p) { return p.name == probe; });
    if (it == probes.end()) source.child("probe").fail("no postgres or mysql probe named '" + probe + "'");
    r.source_kind = it->kind;
    r.source = it->primary;
  } else {
    const Cursor pf = source.child("password_file");
    const std::string dsn_text = source.child("dsn").as_string();
    const bool mysql = dsn_text.rfind("mysql://", 0) == 0 || dsn_text.rfind("mariadb://", 0) == 0;
    r.source_kind = mysql ? ProbeKind::mysql : ProbeKind::postgres;
    r.source = parse_dsn_value(source.child("dsn"), source.has("password_file") ? &pf : nullptr, r.source_kind);
  }
  if (source.has("version_type")) {
    r.version_type = static_cast<ReconcileConfig::VersionType>(source.child("version_type").as_choice({"integer", "timestamp"}));
  }
  for (auto [key, field] : {std::pair<const char*, std::string*>{"table", &r.table}, {"id_column", &r.id_column},
                            {"version_column", &r.version_column}}) {
    *field = source.require(key).as_string();
    if (field->empty()) source.child(key).fail("empty");
  }
  struct Timing {
    const char* key;
    Duration* value;
    Duration min;
  };
  for (const Timing& t : {Timing{"grace", &r.grace, 0ms}, Timing{"every", &r.every, 1s},
                          Timing{"connect_timeout", &r.connect_timeout, 10ms},
                          Timing{"query_timeout", &r.query_timeout, 10ms}}) {
    if (!at.has(t.key)) continue;
    *t.value = at.child(t.key).as_duration();
    check_at_least(at.child(t.key), *t.value, t.min);
  }
  if (at.has("rate_limit")) r.rate_limit = static_cast<double>(at.child("rate_limit").as_int(1, 10'000'000));
  if (at.has("batch")) r.batch = static_cast<int>(at.child("batch").as_int(1, 10'000));
  return r;
}

AgentConfig parse_agent(const Cursor& at) {
  AgentConfig a;
  a.id = host_name();
  if (!at.node().IsDefined() || at.node().IsNull()) return a;
  at.check_keys({"id", "listen", "log_level", "log_format", "web_config"});
  if (at.has("id")) {
    a.id = at.child("id").as_string();
    if (a.id.empty() || a.id.size() > 128) at.child("id").fail("the agent id must be 1-128 characters");
  }
  if (at.has("listen")) {
    a.listen = at.child("listen").as_string();
    static const std::regex host_port(R"(^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})$)");
    std::smatch m;
    if (!std::regex_match(a.listen, m, host_port) || std::stoi(m[2].str()) > 65535) {
      at.child("listen").fail("expected host:port, e.g. 127.0.0.1:9739");
    }
  }
  if (at.has("log_level")) {
    a.log_level = at.child("log_level").as_string();
    log::Level ignored;
    if (!log::parse_level(a.log_level, ignored)) at.child("log_level").fail("expected debug, info, warn or error");
  }
  if (at.has("log_format")) {
    a.log_format = at.child("log_format").as_string();
    log::Format ignored;
    if (!log::parse_format(a.log_format, ignored)) at.child("log_format").fail("expected logfmt or json");
  }
  if (at.has("web_config")) {
    a.web_config = at.child("web_config").as_string();
    if (a.web_config.empty()) at.child("web_config").fail("expected the path of a web config file");
  }
  return a;
}

}  // namespace

std::vector<ReadDelay> default_read_pattern() {
  std::vector<ReadDelay> delays;
  for (const std::string& text : default_read_delays()) delays.push_back({*parse_duration(text), text});
  return delays;
}

std::string DsnConfig::redacted() const { return redact_dsn(dsn); }

Config parse_config(const std::string& text, const std::string& source) {
  const YAML::Node root = load_yaml(text, source);
  Cursor top(source, root, "");
  if (!root.IsDefined() || root.IsNull()) top.fail("the config is empty");
  top.check_keys({"agent", "probes", "slos"});
  Config c;
  c.source = source;
  c.agent = parse_agent(top.child("agent"));
  const Cursor probes = top.require("probes");
  probes.expect_sequence();
  if (probes.node().size() == 0) probes.fail("at least one probe is needed");
  std::set<std::string> names;
  auto is_reconcile = [](const Cursor& item) {
    return item.has("kind") && item.child("kind").node().IsScalar() && item.child("kind").node().Scalar() == "reconcile";
  };
  // Replication probes first: a reconciler's source may name one of them.
  for (bool reconcilers : {false, true}) {
    for (std::size_t i = 0; i < probes.node().size(); ++i) {
      const Cursor item = probes.item(i);
      item.expect_map();
      if (is_reconcile(item) != reconcilers) continue;
      std::string name;
      if (reconcilers) {
        c.reconcilers.push_back(parse_reconcile(item, c.probes));
        name = c.reconcilers.back().name;
      } else {
        c.probes.push_back(parse_probe(item));
        name = c.probes.back().name;
      }
      if (!names.insert(name).second) item.child("name").fail("duplicate probe name '" + name + "'");
    }
  }
  for (ProbeConfig& p : c.probes) p.tls_files_digest = files_digest(tls_files(p));
  for (ReconcileConfig& r : c.reconcilers) r.tls_files_digest = files_digest(tls_files(r));
  // The agent does not use its SLOs (`ghostwatch rules` does); they are checked here so that
  // check-config and a reload refuse a bad one too.
  std::vector<std::string> probe_names;
  for (const ProbeConfig& p : c.probes) probe_names.push_back(p.name);
  parse_slos(top.child("slos"), &probe_names);
  return c;
}

Config load_config(const std::string& path) { return parse_config(read_config_file(path, "config file"), path); }

namespace {
void render_discovery(YAML::Emitter& out, const DiscoveryConfig& d) {
  out << YAML::Key << "discovery" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dsn_template" << YAML::Value << YAML::DoubleQuoted << redact_dsn(d.dsn_template);
  if (d.password_file) out << YAML::Key << "password_file" << YAML::Value << *d.password_file;
  out << YAML::Key << "remove_after" << YAML::Value << d.remove_after;
  for (const DiscoverySourceConfig& s : d.sources) {
    out << YAML::Key << to_string(s.kind) << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "interval" << YAML::Value << format_duration(s.interval);
    switch (s.kind) {
      case DiscoverySourceConfig::Kind::patroni:
        out << YAML::Key << "urls" << YAML::Value << YAML::Flow << s.urls;
        if (!s.ca_file.empty()) out << YAML::Key << "ca_file" << YAML::Value << s.ca_file;
        if (!s.username.empty()) out << YAML::Key << "username" << YAML::Value << s.username;
        if (s.password_file) out << YAML::Key << "password_file" << YAML::Value << *s.password_file;
        break;
      case DiscoverySourceConfig::Kind::from_primary:
        if (s.port) out << YAML::Key << "port" << YAML::Value << s.port;
        if (!s.ports.empty()) out << YAML::Key << "ports" << YAML::Value << YAML::Flow << s.ports;
        break;
      case DiscoverySourceConfig::Kind::dns:
        if (!s.srv.empty()) out << YAML::Key << "srv" << YAML::Value << s.srv;
        else out << YAML::Key << "name" << YAML::Value << s.name << YAML::Key << "port" << YAML::Value << s.port;
        if (!s.server.empty()) out << YAML::Key << "server" << YAML::Value << s.server;
        break;
      case DiscoverySourceConfig::Kind::file: out << YAML::Key << "path" << YAML::Value << s.path; break;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
}

void render_cache(YAML::Emitter& out, const CacheTargetConfig& c, bool with_mode = true) {
  const bool redis = c.kind == CacheTargetConfig::Kind::redis;
  out << YAML::Key << (redis ? "redis" : "memcached") << YAML::Value << c.host + ":" + std::to_string(c.port);
  out << YAML::Key << "key" << YAML::Value << c.key;
  const char* formats[] = {"plain", "json", "hash"};
  out << YAML::Key << "format" << YAML::Value << formats[static_cast<int>(c.format)];
  if (!c.field.empty()) out << YAML::Key << "field" << YAML::Value << c.field;
  if (with_mode) {
    out << YAML::Key << "mode" << YAML::Value << (c.mode == CacheTargetConfig::Mode::update ? "update" : "invalidate");
  }
  if (redis && c.db != 0) out << YAML::Key << "db" << YAML::Value << c.db;
  if (c.password) out << YAML::Key << "password" << YAML::Value << std::string(kRedacted);
  if (c.tls) {
    out << YAML::Key << "tls" << YAML::Value << YAML::BeginMap;
    for (auto [key, value] : {std::pair{"ca_file", &c.tls->ca_file}, {"cert_file", &c.tls->cert_file},
                              {"key_file", &c.tls->key_file}, {"server_name", &c.tls->server_name}}) {
      if (!value->empty()) out << YAML::Key << key << YAML::Value << *value;
    }
    out << YAML::EndMap;
  }
}
}  // namespace

std::string render_config(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "agent" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "id" << YAML::Value << c.agent.id;
  out << YAML::Key << "listen" << YAML::Value << c.agent.listen;
  out << YAML::Key << "log_level" << YAML::Value << c.agent.log_level;
  out << YAML::Key << "log_format" << YAML::Value << c.agent.log_format;
  if (!c.agent.web_config.empty()) out << YAML::Key << "web_config" << YAML::Value << c.agent.web_config;
  out << YAML::EndMap;
  out << YAML::Key << "probes" << YAML::Value << YAML::BeginSeq;
  for (const ProbeConfig& p : c.probes) {
    auto dsn = [&out](const DsnConfig& d) {
      out << YAML::Key << "dsn" << YAML::Value << YAML::DoubleQuoted << d.redacted();
      if (d.password_file) out << YAML::Key << "password_file" << YAML::Value << *d.password_file;
    };
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value << p.name;
    out << YAML::Key << "kind" << YAML::Value << to_string(p.kind);
    if (!p.primary.dsn.empty()) {
      out << YAML::Key << "primary" << YAML::Value << YAML::BeginMap;
      dsn(p.primary);
      out << YAML::EndMap;
    }
    out << YAML::Key << (p.kind == ProbeKind::postgres ? "schema" : "database") << YAML::Value << p.schema;
    out << YAML::Key << "interval" << YAML::Value << format_duration(p.interval);
    out << YAML::Key << "poll_interval" << YAML::Value << format_duration(p.poll_interval);
    out << YAML::Key << "idle_poll_interval" << YAML::Value << format_duration(p.idle_poll_interval);
    out << YAML::Key << "prediction" << YAML::Value << (p.prediction ? "on" : "off");
    out << YAML::Key << "wait" << YAML::Value << (p.wait == WaitMode::server ? "server" : "poll");
    out << YAML::Key << "mode" << YAML::Value << (p.mode == ProbeMode::position ? "position" : "canary");
    out << YAML::Key << "timeout" << YAML::Value << format_duration(p.timeout);
    out << YAML::Key << "connect_timeout" << YAML::Value << format_duration(p.connect_timeout);
    out << YAML::Key << "query_timeout" << YAML::Value << format_duration(p.query_timeout);
    out << YAML::Key << "targets" << YAML::Value << YAML::BeginSeq;
    for (const TargetConfig& t : p.targets) {
      out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << t.name;
      if (t.cache) render_cache(out, *t.cache);
      else dsn(t.dsn);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
    if (p.discovery) render_discovery(out, *p.discovery);
    if (!p.session_settings.empty()) {
      out << YAML::Key << "session_settings" << YAML::Value << YAML::BeginMap;
      for (const auto& [name, value] : p.session_settings) out << YAML::Key << name << YAML::Value << value;
      out << YAML::EndMap;
    }
    if (!p.read_paths.empty()) {
      out << YAML::Key << "read_paths" << YAML::Value << YAML::BeginSeq;
      for (const ReadPathConfig& r : p.read_paths) {
        out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << r.name;
        if (r.kind == ReadPathConfig::Kind::dsn) {
          dsn(r.dsn);
          const bool pool = r.connection == ReadPathConfig::Connection::pool;
          out << YAML::Key << "connection" << YAML::Value << (pool ? "pool" : "per_read");
          if (pool) out << YAML::Key << "pool_size" << YAML::Value << r.pool_size;
        } else if (r.kind == ReadPathConfig::Kind::targets) {
          out << YAML::Key << "targets" << YAML::Value << YAML::Flow << r.targets;
          out << YAML::Key << "policy" << YAML::Value
              << (r.policy == ReadPathConfig::Policy::round_robin ? "round_robin" : "random");
        } else {
          out << YAML::Key << "http" << YAML::Value << r.http_url;
          if (!r.seq_pointer.empty()) out << YAML::Key << "seq" << YAML::Value << r.seq_pointer;
          else out << YAML::Key << "seq_regex" << YAML::Value << YAML::DoubleQuoted << r.seq_regex;
        }
        if (r.session) out << YAML::Key << "session" << YAML::Value << true;
        out << YAML::Key << "max_concurrent" << YAML::Value << r.max_concurrent << YAML::EndMap;
      }
      out << YAML::EndSeq << YAML::Key << "read_delays" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const ReadDelay& d : p.read_delays) out << d.label;
      out << YAML::EndSeq << YAML::Key << "stale_target" << YAML::Value << p.stale_target;
    }
    out << YAML::EndMap;
  }
  for (const ReconcileConfig& r : c.reconcilers) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << r.name;
    out << YAML::Key << "kind" << YAML::Value << "reconcile";
    out << YAML::Key << "cache" << YAML::Value << YAML::BeginMap;
    render_cache(out, r.cache, /*with_mode=*/false);
    out << YAML::EndMap << YAML::Key << "source" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "dsn" << YAML::Value << YAML::DoubleQuoted << r.source.redacted();
    if (r.source.password_file) out << YAML::Key << "password_file" << YAML::Value << *r.source.password_file;
    out << YAML::Key << "table" << YAML::Value << r.table << YAML::Key << "id_column" << YAML::Value << r.id_column;
    out << YAML::Key << "version_column" << YAML::Value << r.version_column;
    out << YAML::Key << "version_type" << YAML::Value
        << (r.version_type == ReconcileConfig::VersionType::integer ? "integer" : "timestamp") << YAML::EndMap;
    out << YAML::Key << "grace" << YAML::Value << format_duration(r.grace);
    out << YAML::Key << "every" << YAML::Value << format_duration(r.every);
    out << YAML::Key << "rate_limit" << YAML::Value << static_cast<long>(r.rate_limit);
    out << YAML::Key << "batch" << YAML::Value << r.batch;
    out << YAML::Key << "connect_timeout" << YAML::Value << format_duration(r.connect_timeout);
    out << YAML::Key << "query_timeout" << YAML::Value << format_duration(r.query_timeout) << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace ghostwatch

namespace ghostwatch {
namespace {

// Why a DSN asks for TLS without verifying the server, or "" when it verifies or asks for none.
std::string unverified_reason(ProbeKind kind, const std::string& mode, const std::string& ca) {
  if (kind == ProbeKind::postgres && mode == "require" && ca.empty()) {
    return "sslmode=require encrypts but does not verify the server (add sslrootcert=CA-FILE and sslmode=verify-full)";
  }
  if (kind == ProbeKind::mysql && (mode == "required" || mode == "preferred") && ca.empty()) {
    return "ssl-mode=" + mode + " encrypts but does not verify the server (add ssl-ca=CA-FILE and ssl-mode=verify_identity)";
  }
  return "";
}

// The TLS settings of a DSN: its mode, and its CA, certificate and key files by option name.
struct DsnTls {
  std::string mode, ca;
  std::vector<std::pair<std::string, std::string>> files;
};

DsnTls dsn_tls(const DsnConfig& d, ProbeKind kind) {
  DsnTls t;
  if (kind == ProbeKind::postgres) {
    t.mode = pg::conninfo_value(d.dsn, "sslmode").value_or("");
    for (const char* key : {"sslrootcert", "sslcert", "sslkey"}) {
      const std::string value = pg::conninfo_value(d.dsn, key).value_or("");
      if (!value.empty() && value != "system") t.files.emplace_back(key, value);
      if (std::string_view(key) == "sslrootcert") t.ca = value;
    }
    return t;
  }
  auto uri = mysql::parse_uri(d.dsn);
  if (!uri) return t;
  t.mode = uri.value().ssl_mode;
  t.ca = uri.value().ssl_ca;
  for (auto [key, value] : {std::pair{"ssl-ca", &uri.value().ssl_ca}, {"ssl-cert", &uri.value().ssl_cert},
                            {"ssl-key", &uri.value().ssl_key}}) {
    if (!value->empty()) t.files.emplace_back(key, *value);
  }
  return t;
}

// A DSN's TLS warnings: unverified, or naming a file this process cannot read (the driver's
// own words for that are poor: libpq quotes garbage, the MariaDB connector says "not found").
std::vector<std::string> dsn_warnings(const DsnConfig& d, ProbeKind kind) {
  std::vector<std::string> out;
  const DsnTls t = dsn_tls(d, kind);
  if (std::string why = unverified_reason(kind, t.mode, t.ca); !why.empty()) out.push_back(why);
  for (const auto& [key, path] : t.files) {
    if (::access(path.c_str(), R_OK) != 0) {
      out.push_back(key + " '" + path + "' cannot be read by this user: " + std::strerror(errno) +
                    " (the connection will fail)");
    }
  }
  return out;
}

}  // namespace

namespace {

void add_dsn_files(std::vector<std::string>& out, const DsnConfig& d, ProbeKind kind) {
  for (const auto& [key, path] : dsn_tls(d, kind).files) out.push_back(path);
}

void add_cache_files(std::vector<std::string>& out, const CacheTargetConfig& c) {
  if (!c.tls) return;
  for (const std::string* f : {&c.tls->ca_file, &c.tls->cert_file, &c.tls->key_file}) {
    if (!f->empty()) out.push_back(*f);
  }
}

}  // namespace

std::vector<std::string> tls_files(const ProbeConfig& p) {
  std::vector<std::string> out;
  add_dsn_files(out, p.primary, p.kind);
  for (const TargetConfig& t : p.targets) {
    if (t.cache) add_cache_files(out, *t.cache);
    else add_dsn_files(out, t.dsn, p.kind);
  }
  for (const ReadPathConfig& r : p.read_paths) add_dsn_files(out, r.dsn, p.kind);
  if (p.discovery) add_dsn_files(out, DsnConfig{p.discovery->dsn_template, {}, {}}, p.kind);
  return out;
}

std::vector<std::string> tls_files(const ReconcileConfig& r) {
  std::vector<std::string> out;
  add_cache_files(out, r.cache);
  add_dsn_files(out, r.source, r.source_kind);
  return out;
}

std::vector<std::string> tls_warnings(const Config& c) {
  std::vector<std::string> out;
  auto check = [&out](const std::string& where, const DsnConfig& d, ProbeKind kind) {
    for (const std::string& why : dsn_warnings(d, kind)) out.push_back(where + ": " + why);
  };
  for (std::size_t i = 0; i < c.probes.size(); ++i) {
    const ProbeConfig& p = c.probes[i];
    const std::string at = "probes[" + std::to_string(i) + "]";
    check(at + ".primary", p.primary, p.kind);
    for (std::size_t j = 0; j < p.targets.size(); ++j) {
      if (!p.targets[j].cache) check(at + ".targets[" + std::to_string(j) + "].dsn", p.targets[j].dsn, p.kind);
    }
    for (std::size_t j = 0; j < p.read_paths.size(); ++j) {
      if (p.read_paths[j].kind == ReadPathConfig::Kind::dsn) {
        check(at + ".read_paths[" + std::to_string(j) + "].dsn", p.read_paths[j].dsn, p.kind);
      }
    }
    if (p.discovery) check(at + ".discovery.dsn_template", DsnConfig{p.discovery->dsn_template, {}, {}}, p.kind);
  }
  for (const ReconcileConfig& r : c.reconcilers) check("reconciler " + r.name + ".source", r.source, r.source_kind);
  return out;
}

}  // namespace ghostwatch
