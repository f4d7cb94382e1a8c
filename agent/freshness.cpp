#include "agent/freshness.h"

#include <cmath>
#include <iostream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/runner.h"
#include "common/interruptible.h"
#include "exporters/report.h"

namespace ghostwatch {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] != '%') {
      out += text[i];
    } else {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = hex_digit(text[i + 1]), lo = hex_digit(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    }
  }
  return out;
}

HttpResponse json_response(int status, const nlohmann::json& body) {
  return {status, "application/json", body.dump() + "\n", {{"Cache-Control", "no-store"}}};
}

HttpResponse bad_request(const std::string& reason) { return json_response(400, {{"error", reason}}); }

}  // namespace

std::optional<std::string> query_parameter(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (percent_decoded(pair.substr(0, eq)) != std::string(name)) continue;
    return percent_decoded(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
  }
  return std::nullopt;
}

HttpResponse freshness_response(const std::string& query,
                                const std::function<ReplicationProbe*(const std::string&)>& find_probe) {
  const auto probe_name = query_parameter(query, "probe");
  const auto position = query_parameter(query, "position");
  if (!probe_name || probe_name->empty()) return bad_request("missing parameter: probe (a postgres or mysql probe's name)");
  if (!position || position->empty()) return bad_request("missing parameter: position (an LSN, GTID list or GTID set)");
  ReplicationProbe* probe = find_probe(*probe_name);
  if (probe == nullptr) return bad_request("unknown probe: " + *probe_name);
  auto answer = probe->freshness(*position);
  if (!answer) return bad_request("position " + *position + ": " + answer.error().message);
  nlohmann::json targets = nlohmann::json::array();
  for (const TargetFreshness& t : answer.value()) {
    targets.push_back({{"target", t.target},
                       {"reached", t.reached ? nlohmann::json(*t.reached) : nlohmann::json()},
                       {"position", t.position ? nlohmann::json(*t.position) : nlohmann::json()},
                       {"age_seconds", rounded_or_null(t.age_seconds)},
                       {"expected_wait_seconds", rounded_or_null(t.expected_wait_seconds)},
                       {"expected_wait_p99_seconds", rounded_or_null(t.expected_wait_p99_seconds)}});
  }
  return json_response(200, {{"probe", *probe_name}, {"position", *position}, {"targets", std::move(targets)}});
}

namespace {

struct WaitTarget {
  const TargetConfig* config = nullptr;
  std::mutex mu;
  bool reached = false;
  std::optional<Position> last;
  std::string last_error;
};

// Polls one replica until it has replayed `position` or `stop`.
void poll_until_reached(CanaryBackend& backend, const ProbeConfig& probe, const Position& position, WaitTarget& t,
                        MonoTime started, std::stop_token stop) {
  auto reader = backend.reader(*t.config, /*report_lag=*/false);
  while (!stop.stop_requested()) {
    auto poll = reader->poll(stop);
    {
      std::lock_guard lock(t.mu);
      if (!poll) {
        t.last_error = poll.error().message;
      } else if (poll->position) {
        t.last = poll->position;
        t.reached = backend.reached(*poll->position, position) == true;
      }
      if (t.reached) {
        const double ms = to_seconds(std::chrono::steady_clock::now() - started) * 1e3;
        std::cerr << "wait: " << t.config->name << " has replayed " << position << " (at " << *t.last << ") after "
                  << std::lround(ms) << " ms\n";
        return;
      }
    }
    sleep_for(stop, probe.poll_interval);
  }
}

}  // namespace

int wait_for_position(const Config& config, const WaitRequest& request, std::stop_token stop) {
  const ProbeConfig* found = nullptr;
  for (const ProbeConfig& p : config.probes) {
    if (p.name == request.probe) found = &p;
  }
  if (!found) {
    std::cerr << "ghostwatch: wait: unknown probe " << request.probe << " (a postgres or mysql probe of the config)\n";
    return 2;
  }
  ProbeConfig probe = *found;
  probe.mode = ProbeMode::position;  // positions only: the canary table need not exist
  const auto backend = make_backend(probe, config.agent.id);
  if (!backend->parses(request.position)) {
    std::cerr << "ghostwatch: wait: --position " << request.position << " is not a position of a "
              << to_string(probe.kind) << " probe\n";
    return 2;
  }
  std::vector<std::unique_ptr<WaitTarget>> targets;
  for (const TargetConfig& t : probe.targets) {
    if (request.target && t.name != *request.target) continue;
    if (t.cache) {
      if (!request.target) continue;
      std::cerr << "ghostwatch: wait: target " << t.name << " is a cache: it has no replication position\n";
      return 2;
    }
    targets.push_back(std::make_unique<WaitTarget>());
    targets.back()->config = &t;
  }
  if (targets.empty()) {
    std::cerr << "ghostwatch: wait: " << (request.target ? "unknown target " + *request.target + " of probe " + probe.name
                                                         : "probe " + probe.name + " has no replica")
              << "\n";
    return 2;
  }
  const MonoTime started = std::chrono::steady_clock::now();
  std::stop_source done;
  std::stop_callback forward(stop, [&done] { done.request_stop(); });
  {
    std::vector<std::jthread> pollers;
    for (auto& t : targets) {
      pollers.emplace_back([&, t = t.get()] { poll_until_reached(*backend, probe, request.position, *t, started, done.get_token()); });
    }
    const MonoTime deadline = started + request.timeout;
    auto all_reached = [&targets] {
      return std::all_of(targets.begin(), targets.end(), [](const auto& t) {
        std::lock_guard lock(t->mu);
        return t->reached;
      });
    };
    while (!all_reached() && std::chrono::steady_clock::now() < deadline && !done.stop_requested()) {
      sleep_for(done.get_token(), std::chrono::milliseconds(1));
    }
    done.request_stop();
  }  // joins the pollers: each poll ends within query_timeout
  int exit_code = 0;
  for (const auto& t : targets) {
    if (t->reached) continue;
    exit_code = 1;
    std::cerr << "wait: " << t->config->name << " has not replayed " << request.position << " within "
              << std::lround(to_seconds(request.timeout) * 1e3) << " ms; last position "
              << t->last.value_or("unknown") << (t->last_error.empty() ? "" : "; last error: " + t->last_error) << "\n";
  }
  return exit_code;
}

}  // namespace ghostwatch
