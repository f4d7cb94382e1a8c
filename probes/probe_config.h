// Typed probe configuration: what agent/config.cpp produces from YAML, after defaults and
// validation. Probes receive these structs and never see YAML or untyped strings.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/tls_client.h"

namespace ghostwatch {

using namespace std::chrono_literals;

// A connection string and, when given by password_file, its password kept apart.
struct DsnConfig {
  std::string dsn;                      // after ${ENV} expansion; may hold a password
  std::optional<std::string> password;  // read from password_file
  std::optional<std::string> password_file;
  std::string redacted() const;         // for printing
  bool operator==(const DsnConfig&) const = default;
};

// A cache that the user's pipeline (write-through, invalidation, CDC) feeds with the canary.
struct CacheTargetConfig {
  enum class Kind { redis, memcached };
  enum class Format { plain, json, hash };  // the integer itself; a JSON document; a Redis hash
  enum class Mode { update, invalidate };   // seen when the cached seq is new enough; when the old value is gone

  Kind kind = Kind::redis;
  std::string host;
  int port = 0;
  std::string key;    // template with {agent} and {probe}
  Format format = Format::plain;
  std::string field;  // JSON pointer (json) or hash field (hash)
  Mode mode = Mode::update;
  int db = 0;                            // redis
  std::optional<std::string> password;   // redis AUTH (inline ${ENV} or password_file)
  std::optional<TlsClientFiles> tls;     // TLS, verified, before AUTH or any key is sent
  bool operator==(const CacheTargetConfig&) const = default;
};

struct TargetConfig {
  std::string name;
  DsnConfig dsn;                          // a database replica, or
  std::optional<CacheTargetConfig> cache; // a cache
  bool operator==(const TargetConfig&) const = default;
};

enum class ProbeKind { postgres, mysql };
// How a replica's progress is watched: polled for the canary row, or (mysql) asked to wait on
// the server for the canary's GTID (MASTER_GTID_WAIT, WAIT_FOR_EXECUTED_GTID_SET).
enum class WaitMode { poll, server };
// canary: the agent writes the canary row and times it (DESIGN.md §1). position: readers look
// only at the targets' positions and never at the canary table (what `ghostwatch wait` polls).
enum class ProbeMode { canary, position };

// A read path of the read-your-writes probe (DESIGN.md §3). Exactly one of dsn, targets, http.
struct ReadPathConfig {
  enum class Kind { dsn, targets, http };
  enum class Connection { per_read, pool };  // dsn paths: a fresh connection per read, or a pool
  enum class Policy { round_robin, random };  // targets paths: which replica serves a read

  std::string name;
  Kind kind = Kind::dsn;
  DsnConfig dsn;
  Connection connection = Connection::per_read;
  int pool_size = 4;
  std::vector<std::string> targets;  // names of the probe's targets
  Policy policy = Policy::round_robin;
  std::string http_url;              // template with {agent}, {probe}, {seq}
  std::string seq_pointer;           // JSON pointer to the seq in the response, or
  std::string seq_regex;             // a regular expression whose first group is the seq
  int max_concurrent = 8;            // reads in flight on this path at most
  // dsn paths: the path writes its own marker row through its connection and reads it back on
  // the same connection (a middleware's session guarantee); per_read is then a fresh connection
  // per write-and-reads cycle, pool a set of long-lived sessions.
  bool session = false;
  bool operator==(const ReadPathConfig&) const = default;
};

// A delay after the canary's ack at which every read path is read; `label` is the configured
// text ("250ms"), used as the metric label.
struct ReadDelay {
  Duration delay{0};
  std::string label;
  bool operator==(const ReadDelay&) const = default;
};

// One discovery source of a probe (DESIGN.md's discovery section, docs/guides/discovery.md).
struct DiscoverySourceConfig {
  enum class Kind { patroni, from_primary, dns, file };
  Kind kind = Kind::file;
  Duration interval = 10s;
  // patroni: GET /cluster from the first URL that answers.
  std::vector<std::string> urls;
  std::string ca_file;                  // "" = the system's CAs
  std::string username;                 // basic auth; "" = none
  std::optional<std::string> password;  // from password_file
  std::optional<std::string> password_file;
  // from_primary: the port a PostgreSQL replica is reached at (pg_stat_replication has no port),
  // and exceptions by member name; MySQL replicas report their own.
  int port = 0;
  std::map<std::string, int> ports;
  // dns: A/AAAA records of `name` at `port`, or SRV records of `srv`; from `server` (host:port)
  // instead of the system's resolvers when set (Consul's DNS interface, say).
  std::string name, srv, server;
  // file: a YAML or JSON list of {name, host, port}.
  std::string path;
  bool operator==(const DiscoverySourceConfig&) const = default;
};

struct DiscoveryConfig {
  std::string dsn_template;             // {host}, {port}, {name}
  std::optional<std::string> password;  // from password_file, kept apart from the DSN
  std::optional<std::string> password_file;
  int remove_after = 3;                 // rounds a member may be missing before it is removed
  std::vector<DiscoverySourceConfig> sources;
  bool operator==(const DiscoveryConfig&) const = default;
};

const char* to_string(DiscoverySourceConfig::Kind kind);

struct ProbeConfig {
  std::string name;
  ProbeKind kind = ProbeKind::postgres;
  DsnConfig primary;
  std::vector<TargetConfig> targets;  // static; discovery may add more while it runs
  std::optional<DiscoveryConfig> discovery;
  std::string schema = "ghostwatch";
  Duration interval = 1s;          // canary write period
  Duration poll_interval = 10ms;   // per-target poll period while a canary is outstanding on it
  Duration idle_poll_interval = 1s;  // otherwise: enough for target_up, positions, reported lag
  // Sleep after an ack until shortly before the canary is expected (ArrivalPredictor), then poll
  // at poll_interval; off: poll at poll_interval from the ack.
  bool prediction = true;
  WaitMode wait = WaitMode::poll;
  ProbeMode mode = ProbeMode::canary;
  Duration timeout = 60s;          // a canary unseen this long is a timeout
  Duration connect_timeout = 5s;
  Duration query_timeout = 2s;
  std::vector<ReadPathConfig> read_paths;
  std::vector<ReadDelay> read_delays;  // set (to the defaults if absent) when read_paths is
  double stale_target = 0.001;         // the stale ratio a recommended read-from-primary window meets
  // Session variables the canary writer (and session read paths) run with, e.g.
  // synchronous_commit; names and values checked against allowed_session_settings().
  std::map<std::string, std::string> session_settings;
  // What the TLS files its connections read held when the config loaded (agent/config.h's
  // tls_files): a reload that finds them changed restarts the probe, so that every connection is
  // made again with the new certificates.
  std::string tls_files_digest;
  bool operator==(const ProbeConfig&) const = default;
};

// A probe's settings without its targets, for what serves one target at a time (backends): a
// thousand targets need not be copied into each of them.
inline ProbeConfig settings_of(const ProbeConfig& probe) {
  ProbeConfig settings = probe;
  std::vector<TargetConfig>().swap(settings.targets);
  return settings;
}

// A cache-vs-DB reconciler (kind: reconcile, DESIGN.md §4): sweeps the cache entries whose keys
// match `cache.key` (a pattern with {id}), and compares each entry's version with its DB row's.
struct ReconcileConfig {
  std::string name;
  CacheTargetConfig cache;      // key holds the {id} pattern; format/field locate the version
  ProbeKind source_kind = ProbeKind::postgres;
  DsnConfig source;             // the database holding the rows
  std::string table, id_column, version_column;  // quoted as identifiers
  // integer: versions compare as integers. timestamp: the DB column is a timestamp and the cached
  // value an ISO-8601 time or epoch seconds; both compare as epoch microseconds (UTC).
  enum class VersionType { integer, timestamp };
  VersionType version_type = VersionType::integer;
  Duration grace = 5s;          // mismatches are re-checked after this, so in-flight updates pass
  Duration every = 60s;         // sweep period in `ghostwatch run`
  double rate_limit = 20000;    // keys per second at most
  int batch = 500;              // keys per cache round trip and DB query
  Duration connect_timeout = 5s;
  Duration query_timeout = 5s;
  std::string tls_files_digest;  // as ProbeConfig's
  bool operator==(const ReconcileConfig&) const = default;
};

struct AgentConfig {
  std::string id;                          // default: the host name
  std::string listen = "127.0.0.1:9739";
  std::string log_level = "info";
  std::string log_format = "logfmt";       // logfmt or json
  std::string web_config;                  // exporter-toolkit style TLS/basic auth file; "" = none
  bool operator==(const AgentConfig&) const = default;
};

struct Config {
  std::string source;  // the file it came from, for messages
  AgentConfig agent;
  std::vector<ProbeConfig> probes;
  std::vector<ReconcileConfig> reconcilers;  // the probes of kind reconcile
};

const char* to_string(ProbeKind kind);

// The session variables a probe may set (session_settings), with the values each takes ({} for
// an integer 0-15, wsrep_sync_wait's bitmask): settings that change what a commit waits for or
// what a read waits for, and nothing that could harm the server.
struct AllowedSetting {
  const char* name;
  std::vector<std::string> values;
};
const std::vector<AllowedSetting>& allowed_session_settings(ProbeKind kind);

}  // namespace ghostwatch
