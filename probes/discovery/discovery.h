// Discovery: a probe's targets taken, live, from the sources that know the cluster's shape
// (Patroni's REST API, the primary's own list of replicas, a file other tooling writes). Each
// source runs on a thread of its own every `interval`; each round's answer goes through the
// source's MemberSet (members.h), and the union of every source's members, rendered into DSNs by
// the template, is what the probe's live target set is made to match. A source that fails keeps
// its last good members; a member missing for `remove_after` rounds is removed.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "exporters/sink.h"
#include "probes/discovery/members.h"
#include "probes/probe_config.h"
#include "probes/replication_probe.h"

namespace ghostwatch::discovery {

class Source {
 public:
  virtual ~Source() = default;
  // The members the source lists now; an error (redacted) when it could not be asked.
  virtual Result<std::vector<Member>> list(std::stop_token stop) = 0;
};

// The live target set discovery changes (a ReplicationProbe in the agent).
class TargetSet {
 public:
  virtual ~TargetSet() = default;
  virtual Status add(TargetConfig target, TargetOrigin origin) = 0;
  virtual void remove(const std::string& name) = 0;
  virtual void set_role(const std::string& name, const std::string& role) = 0;
  // The writer's DSN (a Patroni leader and the other members, for a probe without `primary:`).
  virtual void set_primary(DsnConfig primary) = 0;
};

// A ReplicationProbe as a TargetSet.
class ProbeTargets final : public TargetSet {
 public:
  explicit ProbeTargets(ReplicationProbe& probe) : probe_(probe) {}
  Status add(TargetConfig target, TargetOrigin origin) override { return probe_.add_target(std::move(target), std::move(origin)); }
  void remove(const std::string& name) override { probe_.remove_target(name); }
  void set_role(const std::string& name, const std::string& role) override { probe_.set_target_role(name, role); }
  void set_primary(DsnConfig primary) override { probe_.set_primary(std::move(primary)); }

 private:
  ReplicationProbe& probe_;
};

struct SourceEntry {
  DiscoverySourceConfig::Kind kind;
  Duration interval;
  std::unique_ptr<Source> source;
};

// The file source: the file is read again at every round, so that a change shows at the next.
std::unique_ptr<Source> file_source(const std::string& path);
// Patroni's GET /cluster from the first of `config.urls` that answers (patroni_source.cpp). The
// leader is listed as role "primary" and does not join; a member already measured stays while
// it is listed (a promoted replica is then shown as the primary).
std::unique_ptr<Source> patroni_source(const DiscoverySourceConfig& config, Duration connect_timeout, Duration timeout);
// dns: A/AAAA records of `config.name` (one member per address, named by it, at `config.port`),
// or SRV records of `config.srv` (one per record, named by its target host, at its port, with
// the address the same server gives for that host), from the system's resolver or
// `config.server`; c-ares, within `timeout` per round (dns_source.cpp). NXDOMAIN and no records
// are an answer (no members); SERVFAIL, a refusal or a timeout is a failure (the last set kept).
std::unique_ptr<Source> dns_source(const DiscoverySourceConfig& config, Duration timeout);
// from_primary: the replicas the probe's primary streams to. PostgreSQL's pg_stat_replication
// (probes/postgres/pg_discovery.cpp: named by application_name, at client_addr and the
// configured port); MySQL/MariaDB's SHOW REPLICA HOSTS (probes/mysql/mysql_discovery.cpp: at
// report_host and report_port).
std::unique_ptr<Source> pg_replicas_source(const ProbeConfig& probe, const DiscoverySourceConfig& config);
std::unique_ptr<Source> mysql_replicas_source(const ProbeConfig& probe);

class Discovery {
 public:
  // `static_names`: the probe's configured targets, which no discovered member may take the
  // name of. `follow_leader`: the probe has no `primary:`; its writer goes where the members
  // listed as primary (a Patroni leader) are.
  Discovery(std::string probe, const DiscoveryConfig& config, std::vector<SourceEntry> sources, TargetSet& targets,
            ProbeSink& sink, std::vector<std::string> static_names, bool follow_leader = false);
  ~Discovery();

  // Every source's rounds, each on a thread of its own, until `stop`.
  void run(std::stop_token stop);
  // One round of source `i` (what run() does every interval; for tests).
  void round(std::size_t i, std::stop_token stop);

 private:
  struct Applied {
    std::string source;  // its kind, as in metrics
    Member member;
  };
  struct PerSource;
  void reconcile();  // with mu_ held
  void follow_leader(const std::vector<Member>& listed);  // with mu_ held
  void apply(const std::string& name, const Applied& want);
  void complain_once(const std::string& key, const std::string& message);

  const std::string probe_;
  const std::string dsn_template_;
  const std::optional<std::string> password_;
  TargetSet& targets_;
  std::vector<std::unique_ptr<PerSource>> sources_;
  std::set<std::string> static_names_;
  const bool follow_leader_;
  std::mutex mu_;
  std::string writer_dsn_;  // the last one given to the probe
  std::map<std::string, Applied> applied_;
  std::set<std::string> complaints_;  // logged once until the cause goes
  std::set<std::string> complaints_this_round_;
};

// The sources a probe's `discovery:` section names, in its order.
std::vector<SourceEntry> sources_of(const ProbeConfig& probe);

// A probe's `discovery:` section, bound to the running probe.
class ProbeDiscovery {
 public:
  ProbeDiscovery(const ProbeConfig& probe, ReplicationProbe& running);
  // One round of every source, one after another: the targets a one-shot run starts with.
  void first_rounds(std::stop_token stop);
  void run(std::stop_token stop) { discovery_.run(stop); }

 private:
  ProbeTargets targets_;
  Discovery discovery_;
  std::size_t sources_;
};

// Null for a probe without a `discovery:` section.
std::unique_ptr<ProbeDiscovery> make_discovery(const ProbeConfig& probe, ReplicationProbe& running);

}  // namespace ghostwatch::discovery
