#include "probes/read_paths.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <regex>

#include <nlohmann/json.hpp>

#include "common/parse_number.h"
#include "exporters/sink.h"
#include "probes/http_get.h"

namespace ghostwatch {
namespace {

using ReaderFactory = std::function<std::unique_ptr<CanaryReader>()>;

// A fixed set of readers (each with its own connection) shared by the path's workers.
class ReaderPool {
 public:
  ReaderPool(const ReaderFactory& make, int size) {
    for (int i = 0; i < size; ++i) free_.push_back(make());
  }
  Result<std::optional<int64_t>> read(std::stop_token stop) {
    std::unique_ptr<CanaryReader> reader;
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait(lock, stop, [this] { return !free_.empty(); })) return Error{"interrupted by shutdown"};
      reader = std::move(free_.back());
      free_.pop_back();
    }
    auto poll = reader->poll(stop);
    {
      std::lock_guard lock(mu_);
      free_.push_back(std::move(reader));
    }
    cv_.notify_one();
    if (!poll) return poll.error();
    return poll->seq;
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::vector<std::unique_ptr<CanaryReader>> free_;
};

// A fresh connection per read: what a client behind a load balancer or pooler sees.
class PerReadPath final : public ReadPath {
 public:
  explicit PerReadPath(ReaderFactory make) : make_(std::move(make)) {}
  Result<std::optional<int64_t>> read(int64_t, std::stop_token stop) override {
    auto poll = make_()->poll(stop);
    if (!poll) return poll.error();
    return poll->seq;
  }

 private:
  ReaderFactory make_;
};

class PooledPath final : public ReadPath {
 public:
  PooledPath(const ReaderFactory& make, int size) : pool_(make, size) {}
  Result<std::optional<int64_t>> read(int64_t, std::stop_token stop) override { return pool_.read(stop); }

 private:
  ReaderPool pool_;
};

// A path that writes its own marker through a session and reads it back on it; the read-back
// scheduler drives the cycle through open_session().
class SessionPath final : public ReadPath {
 public:
  SessionPath(CanaryBackend& backend, TargetConfig target, std::string key, bool keep)
      : backend_(backend), target_(std::move(target)), key_(std::move(key)), keep_(keep) {}
  Result<std::optional<int64_t>> read(int64_t, std::stop_token) override {
    return Error{"a session path reads through its sessions"};
  }
  std::unique_ptr<CanarySession> open_session() override { return backend_.session(target_, key_); }
  bool keeps_sessions() const override { return keep_; }

 private:
  CanaryBackend& backend_;
  TargetConfig target_;
  std::string key_;
  bool keep_;
};

// The probe's own targets, one chosen per read by the policy.
class TargetsPath final : public ReadPath {
 public:
  TargetsPath(std::vector<std::unique_ptr<ReaderPool>> pools, ReadPathConfig::Policy policy)
      : pools_(std::move(pools)), policy_(policy) {}
  Result<std::optional<int64_t>> read(int64_t, std::stop_token stop) override { return pools_[pick()]->read(stop); }

 private:
  std::size_t pick() {
    if (policy_ == ReadPathConfig::Policy::round_robin) return next_++ % pools_.size();
    thread_local std::minstd_rand rng{std::random_device{}()};
    return std::uniform_int_distribution<std::size_t>(0, pools_.size() - 1)(rng);
  }
  std::vector<std::unique_ptr<ReaderPool>> pools_;
  ReadPathConfig::Policy policy_;
  std::atomic<std::size_t> next_{0};
};

// An application endpoint that exposes the canary through its normal read path. HTTP 404 means
// "no canary here" (a stale read); any other status outside 2xx is an error.
class HttpPath final : public ReadPath {
 public:
  HttpPath(ReadPathConfig config, std::string agent, std::string probe, Duration connect_timeout, Duration timeout)
      : config_(std::move(config)), agent_(std::move(agent)), probe_(std::move(probe)),
        options_{connect_timeout, timeout, "", "", ""} {}

  Result<std::optional<int64_t>> read(int64_t written, std::stop_token stop) override {
    auto answer = http_get(expand_url(config_.http_url, agent_, probe_, written), options_, stop);
    if (!answer) return Error{"GET failed: " + answer.error().message};
    if (answer->status == 404) return std::optional<int64_t>();
    if (answer->status < 200 || answer->status > 299) return Error{"GET answered HTTP " + std::to_string(answer->status)};
    auto seq = extract_seq(answer->body, config_);
    if (!seq) return seq.error();
    return std::optional<int64_t>(seq.value());
  }

 private:
  ReadPathConfig config_;
  std::string agent_, probe_;
  HttpGetOptions options_;
};

std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

const TargetConfig& find_target(const ProbeConfig& probe, const std::string& name) {
  for (const TargetConfig& t : probe.targets) {
    if (t.name == name) return t;
  }
  throw std::logic_error("read path names unknown target " + name);  // the config loader checked
}

}  // namespace

std::string expand_url(const std::string& url_template, const std::string& agent, const std::string& probe,
                       int64_t seq) {
  std::string url = url_template;
  replace_all(url, "{agent}", percent_encode(agent));
  replace_all(url, "{probe}", percent_encode(probe));
  replace_all(url, "{seq}", std::to_string(seq));
  return url;
}

Result<int64_t> extract_seq(const std::string& body, const ReadPathConfig& path) {
  if (!path.seq_regex.empty()) {
    std::smatch m;
    if (!std::regex_search(body, m, std::regex(path.seq_regex)) || m.size() < 2) {
      return Error{"seq_regex did not match the response"};
    }
    auto seq = parse_number<int64_t>(std::string_view(m[1].first, m[1].second));
    if (!seq) return Error{"seq_regex matched '" + m[1].str() + "', not an integer"};
    return *seq;
  }
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return Error{"the response is not JSON"};
  const nlohmann::json::json_pointer pointer(path.seq_pointer);
  if (!json.contains(pointer)) return Error{"no value at " + path.seq_pointer + " in the response"};
  const auto& value = json.at(pointer);
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string()) {
    if (auto seq = parse_number<int64_t>(std::string_view(value.get_ref<const std::string&>()))) return *seq;
  }
  return Error{"the value at " + path.seq_pointer + " is not an integer"};
}

std::unique_ptr<ReadPath> make_read_path(const ProbeConfig& probe, const ReadPathConfig& path,
                                         CanaryBackend& backend, const std::string& agent_id) {
  switch (path.kind) {
    case ReadPathConfig::Kind::dsn: {
      const TargetConfig target{path.name, path.dsn, std::nullopt};
      if (path.session) {
        return std::make_unique<SessionPath>(backend, target, session_key(probe.name, path.name),
                                             path.connection == ReadPathConfig::Connection::pool);
      }
      ReaderFactory make = [&backend, target] { return backend.reader(target, /*report_lag=*/false); };
      if (path.connection == ReadPathConfig::Connection::per_read) return std::make_unique<PerReadPath>(make);
      return std::make_unique<PooledPath>(make, path.pool_size);
    }
    case ReadPathConfig::Kind::targets: {
      std::vector<std::unique_ptr<ReaderPool>> pools;
      for (const std::string& name : path.targets) {
        const TargetConfig target = find_target(probe, name);
        ReaderFactory make = [&backend, target] { return backend.reader(target, /*report_lag=*/false); };
        pools.push_back(std::make_unique<ReaderPool>(make, path.max_concurrent));
      }
      return std::make_unique<TargetsPath>(std::move(pools), path.policy);
    }
    case ReadPathConfig::Kind::http:
      return std::make_unique<HttpPath>(path, agent_id, probe.name, probe.connect_timeout, probe.query_timeout);
  }
  return nullptr;
}

}  // namespace ghostwatch
