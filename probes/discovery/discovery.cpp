#include "probes/discovery/discovery.h"

#include <algorithm>
#include <thread>

#include "common/interruptible.h"
#include "common/log.h"
#include "common/small_file.h"

namespace ghostwatch {

const char* to_string(DiscoverySourceConfig::Kind kind) {
  switch (kind) {
    case DiscoverySourceConfig::Kind::patroni: return "patroni";
    case DiscoverySourceConfig::Kind::from_primary: return "from_primary";
    case DiscoverySourceConfig::Kind::dns: return "dns";
    case DiscoverySourceConfig::Kind::file: return "file";
  }
  return "unknown";
}

namespace discovery {
namespace {

constexpr std::size_t kMaxTargetFile = 4u << 20;

// Where a member is reached: its host (and the address its source resolved it to) and port.
std::string address(const Member& m) {
  const bool resolved = !m.address.empty() && m.address != m.host;
  return m.host + (resolved ? "/" + m.address : "") + ":" + std::to_string(m.port);
}

class FileSource final : public Source {
 public:
  explicit FileSource(std::string path) : path_(std::move(path)) {}
  Result<std::vector<Member>> list(std::stop_token) override {
    auto text = read_small_file(path_, kMaxTargetFile);
    if (!text) return text.error();
    auto members = parse_member_file(text.value());
    if (!members) return Error{path_ + ": " + members.error().message};
    return members;
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<Source> file_source(const std::string& path) { return std::make_unique<FileSource>(path); }

struct Discovery::PerSource {
  std::string kind;
  Duration interval;
  std::unique_ptr<Source> source;
  MemberSet set;
  std::shared_ptr<DiscoverySink> sink;
  bool healthy = true;  // logs a failure once per outage
};

Discovery::Discovery(std::string probe, const DiscoveryConfig& config, std::vector<SourceEntry> sources,
                     TargetSet& targets, ProbeSink& sink, std::vector<std::string> static_names, bool follow_leader)
    : probe_(std::move(probe)), dsn_template_(config.dsn_template), password_(config.password), targets_(targets),
      static_names_(static_names.begin(), static_names.end()), follow_leader_(follow_leader) {
  for (SourceEntry& e : sources) {
    const std::string kind = to_string(e.kind);
    sources_.push_back(std::unique_ptr<PerSource>(
        new PerSource{kind, e.interval, std::move(e.source), MemberSet(config.remove_after), sink.discovery(kind)}));
  }
}

Discovery::~Discovery() = default;

void Discovery::run(std::stop_token stop) {
  std::vector<std::jthread> threads;
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    threads.emplace_back([this, i, stop] {
      log::Context context(probe_);
      while (!stop.stop_requested()) {
        round(i, stop);
        sleep_for(stop, sources_[i]->interval);
      }
    });
  }
}  // the threads end with `stop` and are joined here

void Discovery::round(std::size_t i, std::stop_token stop) {
  PerSource& s = *sources_[i];
  Result<std::vector<Member>> listed = s.source->list(stop);
  if (stop.stop_requested()) return;
  if (listed) {
    if (Status unique = unique_names(listed.value()); !unique) listed = unique.error();
  }
  std::lock_guard lock(mu_);
  if (!listed) {
    s.sink->round(false, 0);
    const std::string message = "discovery source " + s.kind + " failed, its last " +
                                std::to_string(s.set.members().size()) + " members kept: " + listed.error().message;
    if (s.healthy) log::warn(message);
    else log::debug(message);
    s.healthy = false;
    return;
  }
  if (!s.healthy) log::info("discovery source " + s.kind + " answers again");
  s.healthy = true;
  s.set.round(listed.value());
  s.sink->round(true, s.set.members().size());
  complaints_this_round_.clear();
  if (follow_leader_) follow_leader(listed.value());
  reconcile();
  // A cause that went is said again should it come back.
  std::erase_if(complaints_, [this](const std::string& key) { return !complaints_this_round_.count(key); });
}

// The writer goes to the member listed as primary, the others named after it (see
// render_writer_dsn); nothing changes while a round lists no primary (an election under way).
void Discovery::follow_leader(const std::vector<Member>& listed) {
  auto leader = std::find_if(listed.begin(), listed.end(), [](const Member& m) { return m.role == "primary"; });
  if (leader == listed.end()) return;
  auto dsn = render_writer_dsn(dsn_template_, *leader, listed);
  if (!dsn) {
    complain_once("writer", "the writer's DSN: dsn_template: " + dsn.error().message);
    return;
  }
  if (dsn.value() == writer_dsn_) return;
  writer_dsn_ = dsn.value();
  log::info("the writer follows the leader " + leader->name + " (" + address(*leader) + ")");
  targets_.set_primary(DsnConfig{dsn.value(), password_, std::nullopt});
}

// The target set made to match the members every source lists now. A name taken by a static
// target, or by an earlier source at another address, is left out (and said once).
void Discovery::reconcile() {
  std::map<std::string, Applied> want;
  for (const auto& s : sources_) {
    for (const Member& m : s->set.members()) {
      if (static_names_.count(m.name)) {
        complain_once("static:" + m.name, "discovered member " + m.name + " (" + s->kind + ", " + address(m) +
                                              ") has the name of a configured target: the configured one is measured");
        continue;
      }
      auto [it, inserted] = want.try_emplace(m.name, Applied{s->kind, m});
      if (inserted || address(it->second.member) == address(m)) continue;
      complain_once("clash:" + m.name, "member " + m.name + " is " + address(it->second.member) + " by " +
                                           it->second.source + " and " + address(m) + " by " + s->kind + ": " +
                                           it->second.source + "'s is measured");
    }
  }
  for (auto it = applied_.begin(); it != applied_.end();) {
    if (want.count(it->first)) {
      ++it;
      continue;
    }
    targets_.remove(it->first);
    log::info("target " + it->first + " (" + address(it->second.member) + ") removed: " + it->second.source +
              " no longer lists it");
    it = applied_.erase(it);
  }
  for (const auto& [name, w] : want) apply(name, w);
}

// Makes target `name` what `want` says: added, moved to a new address (removed and added), or
// given its new role.
void Discovery::apply(const std::string& name, const Applied& want) {
  auto it = applied_.find(name);
  if (it != applied_.end() && address(it->second.member) == address(want.member)) {
    if (it->second.member.role != want.member.role) {
      targets_.set_role(name, want.member.role);
      log::info("target " + name + " is " + (want.member.role.empty() ? "of unknown role" : want.member.role) +
                " now (" + want.source + ")");
    }
    it->second = want;
    return;
  }
  if (it != applied_.end()) {
    targets_.remove(name);
    log::info("target " + name + " moved from " + address(it->second.member) + " to " + address(want.member));
    applied_.erase(it);
  }
  auto dsn = render_dsn(dsn_template_, want.member);
  if (!dsn) {
    complain_once("dsn:" + name, "discovered member " + name + ": dsn_template: " + dsn.error().message);
    return;
  }
  Status added = targets_.add(TargetConfig{name, DsnConfig{dsn.value(), password_, std::nullopt}, std::nullopt},
                              TargetOrigin{want.source, want.member.role});
  if (!added) {
    complain_once("add:" + name, "discovered member " + name + " not added: " + added.error().message);
    return;
  }
  log::info("target " + name + " (" + address(want.member) + ") added by " + want.source +
            (want.member.role.empty() ? "" : ", role " + want.member.role));
  applied_[name] = want;
}

void Discovery::complain_once(const std::string& key, const std::string& message) {
  complaints_this_round_.insert(key);
  if (complaints_.insert(key).second) log::error(message);
}

std::vector<SourceEntry> sources_of(const ProbeConfig& probe) {
  std::vector<SourceEntry> out;
  for (const DiscoverySourceConfig& s : probe.discovery->sources) {
    std::unique_ptr<Source> source;
    switch (s.kind) {
      case DiscoverySourceConfig::Kind::patroni:
        source = patroni_source(s, probe.connect_timeout, probe.query_timeout);
        break;
      case DiscoverySourceConfig::Kind::from_primary:
        source = probe.kind == ProbeKind::postgres ? pg_replicas_source(probe, s) : mysql_replicas_source(probe);
        break;
      case DiscoverySourceConfig::Kind::file: source = file_source(s.path); break;
      case DiscoverySourceConfig::Kind::dns: source = dns_source(s, probe.connect_timeout); break;
    }
    out.push_back(SourceEntry{s.kind, s.interval, std::move(source)});
  }
  return out;
}

namespace {

std::vector<std::string> static_names(const ProbeConfig& probe) {
  std::vector<std::string> names;
  for (const TargetConfig& t : probe.targets) names.push_back(t.name);
  return names;
}

}  // namespace

ProbeDiscovery::ProbeDiscovery(const ProbeConfig& probe, ReplicationProbe& running)
    : targets_(running),
      discovery_(probe.name, *probe.discovery, sources_of(probe), targets_, running.sink(), static_names(probe),
                 /*follow_leader=*/probe.primary.dsn.empty()),
      sources_(probe.discovery->sources.size()) {}

void ProbeDiscovery::first_rounds(std::stop_token stop) {
  for (std::size_t i = 0; i < sources_ && !stop.stop_requested(); ++i) discovery_.round(i, stop);
}

std::unique_ptr<ProbeDiscovery> make_discovery(const ProbeConfig& probe, ReplicationProbe& running) {
  if (!probe.discovery) return nullptr;
  return std::make_unique<ProbeDiscovery>(probe, running);
}

}  // namespace discovery
}  // namespace ghostwatch
