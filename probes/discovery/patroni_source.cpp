#include <curl/curl.h>

#include "common/redact.h"
#include "probes/discovery/discovery.h"

namespace ghostwatch::discovery {
namespace {

constexpr std::size_t kMaxAnswer = 1u << 20;

std::size_t append_cluster_answer(char* data, std::size_t size, std::size_t count, void* out) {
  auto* body = static_cast<std::string*>(out);
  if (body->size() + size * count > kMaxAnswer) return 0;  // aborts the transfer
  body->append(data, size * count);
  return size * count;
}

int abort_when_stopping(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::stop_token*>(stop)->stop_requested() ? 1 : 0;
}

long whole_ms(Duration d) { return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); }

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
  Result<std::string> get(const std::string& url, std::stop_token& stop) const {
    std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
    if (!curl) return Error{"curl_easy_init failed"};
    std::string body;
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, whole_ms(connect_timeout_));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, whole_ms(connect_timeout_ + timeout_));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &append_cluster_answer);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &abort_when_stopping);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &stop);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ghostwatch/" GHOSTWATCH_VERSION);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (!config_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, config_.ca_file.c_str());
    if (!config_.username.empty()) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(c, CURLOPT_USERNAME, config_.username.c_str());
      curl_easy_setopt(c, CURLOPT_PASSWORD, config_.password.value_or("").c_str());
    }
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) return Error{scrub(std::string("GET /cluster failed: ") + curl_easy_strerror(rc))};
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) return Error{"GET /cluster answered HTTP " + std::to_string(status)};
    return body;
  }

  DiscoverySourceConfig config_;
  Duration connect_timeout_, timeout_;
};

}  // namespace

std::unique_ptr<Source> patroni_source(const DiscoverySourceConfig& config, Duration connect_timeout, Duration timeout) {
  return std::make_unique<PatroniSource>(config, connect_timeout, timeout);
}

}  // namespace ghostwatch::discovery
