// from_primary on MySQL/MariaDB: one member per replica registered with the primary.
#include "probes/discovery/discovery.h"
#include "probes/lazy_connection.h"
#include "probes/mysql/mysql_replication.h"

namespace ghostwatch::discovery {
namespace {

using LazyMysql = LazyConnection<mysql::Connection, mysql::ConnectOptions>;

constexpr int kDefaultPort = 3306;

// MariaDB 10.5.1+ knows SHOW REPLICA HOSTS, MySQL 8.0.22+ SHOW REPLICAS; older servers of both
// only SHOW SLAVE HOSTS. Each answers Server_id, Host, Port (Host is the replica's report_host:
// a replica started without it is not listed, or listed without a host).
constexpr const char* kStatements[] = {"SHOW REPLICA HOSTS", "SHOW REPLICAS", "SHOW SLAVE HOSTS"};

class MysqlReplicas final : public Source {
 public:
  explicit MysqlReplicas(const ProbeConfig& probe) : options_(mysql::connect_options(probe.primary, probe)) {}

  Result<std::vector<Member>> list(std::stop_token stop) override {
    if (!options_) return options_.error();
    if (!conn_) conn_.emplace(options_.value());
    auto c = conn_->get(stop, [](mysql::Connection&) { return ok_status(); });
    if (!c) return c.error();
    Result<mysql::Rows> rows = Error{"no statement tried"};
    for (std::size_t i = statement_; i < std::size(kStatements); ++i) {
      rows = c.value()->query(kStatements[i]);
      if (rows || c.value()->broken()) {
        statement_ = rows ? i : statement_;
        break;
      }
    }
    if (!rows) return Error{rows.error().message + " (the user needs REPLICATION MASTER ADMIN on MariaDB, "
                                                    "REPLICATION SLAVE on MySQL)"};
    std::vector<Member> out;
    for (std::size_t r = 0; r < rows->rows.size(); ++r) {
      const auto host = rows->get(r, "Host");
      if (!host || host->empty()) continue;
      Member m;
      m.host = *host;
      m.port = std::atoi(rows->get(r, "Port").value_or("0").c_str());
      if (m.port <= 0) m.port = kDefaultPort;
      m.name = label_value(m.port == kDefaultPort ? m.host : m.host + ":" + std::to_string(m.port));
      m.role = "replica";
      out.push_back(std::move(m));
    }
    return out;
  }

 private:
  Result<mysql::ConnectOptions> options_;
  std::optional<LazyMysql> conn_;
  std::size_t statement_ = 0;  // the first statement this server knows
};

}  // namespace

std::unique_ptr<Source> mysql_replicas_source(const ProbeConfig& probe) { return std::make_unique<MysqlReplicas>(probe); }

}  // namespace ghostwatch::discovery
