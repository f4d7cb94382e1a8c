// LiveStatus: the agent's current view of every probe, target, read path and reconciler, kept
// for the human-facing views of `ghostwatch run`: the live terminal table (--live), the HTML
// landing page and /readyz. Keeps the last 100 lag samples per target for p50/p99 (and 100 received lags),
// and the last 15 minutes in 15 s steps for the landing page's charts (LagHistory).
//
// A probe's state lives as long as the handles its probe holds: when a reload stops a probe,
// its rows leave every view.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "exporters/lag_history.h"
#include "exporters/sink.h"

namespace ghostwatch {

struct TargetStatus {
  std::string name;
  bool polled = false;  // at least one poll finished (either way)
  bool up = false;      // the last poll succeeded
  long samples = 0;     // canaries seen
  // Lag figures exist only once a canary was seen: "no sample" is never shown as 0.
  std::optional<double> last, p50, p99;  // seconds
  // Of the received lag (the commit position reached the target): none for caches.
  std::optional<double> received_p50;
  double pending = 0;                    // seconds
  std::optional<double> reported;        // seconds, as the server reports it
  bool is_primary = false;               // the target accepts writes itself (after a failover)
  std::string source = "static";         // "static" (the config) or its discovery source
  std::string role;                      // shown_role(): "" while unknown
  long timeouts = 0, errors = 0;
  std::string last_error;  // redacted
  std::vector<HistoryPoint> history;  // the last 15 minutes: only in snapshot(with_history)
};

struct ReadPathStatus {
  std::string name;
  std::vector<std::string> delays;
  std::vector<long> reads, stale, errors;  // by delay index, since the agent started
};

struct ProbeStatus {
  std::string name, kind;
  long writes_ok = 0, write_errors = 0;
  std::string last_write_error;  // redacted
  bool position_sampled = false;  // mode: position: the primary's position was read
  std::vector<TargetStatus> targets;
  std::vector<ReadPathStatus> read_paths;
};

struct ReconcileStatus {
  std::string name, target;
  long sweeps_ok = 0, sweeps_failed = 0;
  std::optional<SweepObservation> last;  // the last successful sweep
};

struct StatusSnapshot {
  std::vector<ProbeStatus> probes;
  std::vector<ReconcileStatus> reconcilers;
};

class LiveStatus final : public ObservationSink {
 public:
  std::shared_ptr<ProbeSink> probe(const std::string& name, const std::string& kind) override;
  std::shared_ptr<ReconcileSink> reconcile(const std::string& name, const std::string& target) override;
  // with_history: each target's 15-minute history too (the landing page's charts; 720 bytes
  // a target, which the other views need not copy).
  StatusSnapshot snapshot(bool with_history = false) const;

  struct ProbeState;
  struct ReconcileState;

 private:
  mutable std::mutex mu_;
  mutable std::vector<std::weak_ptr<ProbeState>> probes_;
  mutable std::vector<std::weak_ptr<ReconcileState>> reconcilers_;
};

// Empty when every probe has written a canary and polled each of its targets once; otherwise
// what is still missing, one reason per line (what /readyz answers with 503).
std::string not_ready_reasons(const StatusSnapshot& status);

// The live terminal table of `run --live`.
std::string render_console(const StatusSnapshot& status);

}  // namespace ghostwatch
