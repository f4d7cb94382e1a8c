// from_primary on PostgreSQL: one member per physical walsender in pg_stat_replication.
#include "probes/discovery/discovery.h"
#include "probes/lazy_connection.h"
#include "probes/postgres/pg_replication.h"

namespace ghostwatch::discovery {
namespace {

using LazyPg = LazyConnection<pg::Connection, pg::ConnectOptions>;

// Logical walsenders (CDC, logical replicas) and base backups stream from the primary too, but
// hold no copy of it to poll. Without pg_monitor (or pg_read_all_stats) the view shows other
// users' walsenders with NULL in every column but the pid: `state` tells that apart.
constexpr const char* kReplicas =
    "SELECT r.application_name, host(r.client_addr), r.sync_state, r.state "
    "FROM pg_stat_replication r "
    "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical') "
    "ORDER BY r.application_name, r.client_addr";

std::string role_of(std::string_view sync_state) {
  if (sync_state == "sync") return "sync_standby";
  if (sync_state == "quorum") return "quorum_standby";
  return "replica";
}

class PgReplicas final : public Source {
 public:
  PgReplicas(const ProbeConfig& probe, DiscoverySourceConfig config)
      : conn_(pg::connect_options(probe.primary, probe)), config_(std::move(config)) {}

  Result<std::vector<Member>> list(std::stop_token stop) override {
    auto c = conn_.get(stop, [](pg::Connection&) { return ok_status(); });
    if (!c) return c.error();
    auto rows = c.value()->exec(kReplicas);
    if (!rows) return rows.error();
    std::vector<Member> out;
    int hidden = 0;
    for (int i = 0; i < rows->size(); ++i) {
      const auto state = rows->get(i, 3);
      if (!state) {
        ++hidden;
        continue;
      }
      const auto host = rows->get(i, 1);
      if (*state == "backup" || !host) continue;  // a base backup, or a replica on a Unix socket
      out.push_back(member(rows->get(i, 0).value_or(""), std::string(*host), rows->get(i, 2).value_or("")));
    }
    if (hidden > 0 && out.empty()) {
      return Error{"pg_stat_replication hides its " + std::to_string(hidden) +
                   " walsenders from this user: grant it pg_monitor"};
    }
    return out;
  }

 private:
  // Named by application_name (Patroni and most operators set it to the member's name), or by
  // the address when it is libpq's default.
  Member member(std::string_view application_name, const std::string& host, std::string_view sync_state) const {
    Member m;
    const bool named = !application_name.empty() && application_name != "walreceiver";
    m.name = label_value(named ? application_name : std::string_view(host));
    m.host = host;
    const auto port = config_.ports.find(m.name);
    m.port = port != config_.ports.end() ? port->second : config_.port;
    m.role = role_of(sync_state);
    return m;
  }

  LazyPg conn_;
  DiscoverySourceConfig config_;
};

}  // namespace

std::unique_ptr<Source> pg_replicas_source(const ProbeConfig& probe, const DiscoverySourceConfig& config) {
  return std::make_unique<PgReplicas>(probe, config);
}

}  // namespace ghostwatch::discovery
