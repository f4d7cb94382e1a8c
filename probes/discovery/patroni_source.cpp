#include "probes/discovery/discovery.h"
#include "probes/http_get.h"

namespace ghostwatch::discovery {
namespace {

// Patroni's roles in ghostwatch's words: its leader is the primary.
void as_targets(std::vector<Member>& members) {
  for (Member& m : members) {
    if (m.role == "leader" || m.role == "master" || m.role == "primary") {
      m.role = "primary";
      m.eligible = false;  // the writer, not a replica to measure
    }
  }
}

class PatroniSource final : public Source {
 public:
  PatroniSource(DiscoverySourceConfig config, Duration connect_timeout, Duration timeout)
      : config_(std::move(config)), connect_timeout_(connect_timeout), timeout_(timeout) {}

  Result<std::vector<Member>> list(std::stop_token stop) override {
    std::string errors;
    for (const std::string& url : config_.urls) {
      auto body = get(url + "/cluster", stop);
      if (body) {
        auto members = parse_patroni_cluster(body.value());
        if (members) {
          as_targets(members.value());
          return members;
        }
        body = Error{members.error().message};
      }
      if (stop.stop_requested()) break;
      errors += (errors.empty() ? "" : "; ") + url + ": " + body.error().message;
    }
    return Error{"no member's REST API answered: " + errors};
  }

 private:
  Result<std::string> get(const std::string& url, std::stop_token stop) const {
    const HttpGetOptions options{connect_timeout_, connect_timeout_ + timeout_, config_.ca_file, config_.username,
                                 config_.password.value_or("")};
    auto answer = http_get(url, options, stop);
    if (!answer) return Error{"GET /cluster failed: " + answer.error().message};
    if (answer->status != 200) return Error{"GET /cluster answered HTTP " + std::to_string(answer->status)};
    return std::move(answer->body);
  }

  DiscoverySourceConfig config_;
  Duration connect_timeout_, timeout_;
};

}  // namespace

std::unique_ptr<Source> patroni_source(const DiscoverySourceConfig& config, Duration connect_timeout, Duration timeout) {
  return std::make_unique<PatroniSource>(config, connect_timeout, timeout);
}

}  // namespace ghostwatch::discovery
