#include "exporters/fanout_sink.h"

namespace ghostwatch {
namespace {

class FanoutTarget final : public TargetSink {
 public:
  explicit FanoutTarget(std::vector<std::shared_ptr<TargetSink>> c) : children_(std::move(c)) {}
  void visible(const VisibilitySample& s) override { for (auto& c : children_) c->visible(s); }
  void received(const VisibilitySample& s) override { for (auto& c : children_) c->received(s); }
  void timed_out(int n) override { for (auto& c : children_) c->timed_out(n); }
  void pending(Duration age) override { for (auto& c : children_) c->pending(age); }
  void polled(bool ok, const std::string& e) override { for (auto& c : children_) c->polled(ok, e); }
  void position_lag(PositionUnit u, std::optional<double> b) override {
    for (auto& c : children_) c->position_lag(u, b);
  }
  void reported_lag(std::optional<double> s) override { for (auto& c : children_) c->reported_lag(s); }
  void role(bool is_primary) override { for (auto& c : children_) c->role(is_primary); }
  void origin(const std::string& source, const std::string& role) override {
    for (auto& c : children_) c->origin(source, role);
  }
  void discovered_role(const std::string& role) override { for (auto& c : children_) c->discovered_role(role); }

 private:
  std::vector<std::shared_ptr<TargetSink>> children_;
};

class FanoutReadPath final : public ReadPathSink {
 public:
  explicit FanoutReadPath(std::vector<std::shared_ptr<ReadPathSink>> c) : children_(std::move(c)) {}
  void read(std::size_t d, ReadOutcome o, Duration latency, const std::string& e) override {
    for (auto& c : children_) c->read(d, o, latency, e);
  }
  void skipped(std::size_t d) override { for (auto& c : children_) c->skipped(d); }
  void schedule_offset(Duration offset) override { for (auto& c : children_) c->schedule_offset(offset); }
  void written(bool ok, Duration latency, const std::string& e) override {
    for (auto& c : children_) c->written(ok, latency, e);
  }

 private:
  std::vector<std::shared_ptr<ReadPathSink>> children_;
};

class FanoutDiscovery final : public DiscoverySink {
 public:
  explicit FanoutDiscovery(std::vector<std::shared_ptr<DiscoverySink>> c) : children_(std::move(c)) {}
  void round(bool ok, std::size_t targets) override { for (auto& c : children_) c->round(ok, targets); }

 private:
  std::vector<std::shared_ptr<DiscoverySink>> children_;
};

class IgnoredDiscovery final : public DiscoverySink {
 public:
  void round(bool, std::size_t) override {}
};

class FanoutProbe final : public ProbeSink {
 public:
  explicit FanoutProbe(std::vector<std::shared_ptr<ProbeSink>> c) : children_(std::move(c)) {}
  void canary_written(bool ok, Duration latency, const std::string& error) override {
    for (auto& c : children_) c->canary_written(ok, latency, error);
  }
  void position_sampled() override {
    for (auto& c : children_) c->position_sampled();
  }
  std::shared_ptr<TargetSink> target(const std::string& name) override {
    std::vector<std::shared_ptr<TargetSink>> targets;
    for (auto& c : children_) targets.push_back(c->target(name));
    return std::make_shared<FanoutTarget>(std::move(targets));
  }
  std::shared_ptr<DiscoverySink> discovery(const std::string& source) override {
    std::vector<std::shared_ptr<DiscoverySink>> sources;
    for (auto& c : children_) sources.push_back(c->discovery(source));
    return std::make_shared<FanoutDiscovery>(std::move(sources));
  }
  std::shared_ptr<ReadPathSink> read_path(const std::string& name, const std::vector<std::string>& delays) override {
    std::vector<std::shared_ptr<ReadPathSink>> paths;
    for (auto& c : children_) paths.push_back(c->read_path(name, delays));
    return std::make_shared<FanoutReadPath>(std::move(paths));
  }

 private:
  std::vector<std::shared_ptr<ProbeSink>> children_;
};

class FanoutReconcile final : public ReconcileSink {
 public:
  explicit FanoutReconcile(std::vector<std::shared_ptr<ReconcileSink>> c) : children_(std::move(c)) {}
  void swept(const SweepObservation& s) override { for (auto& c : children_) c->swept(s); }

 private:
  std::vector<std::shared_ptr<ReconcileSink>> children_;
};

class IgnoredReconcile final : public ReconcileSink {
 public:
  void swept(const SweepObservation&) override {}
};

}  // namespace

std::shared_ptr<ReconcileSink> ObservationSink::reconcile(const std::string&, const std::string&) {
  return std::make_shared<IgnoredReconcile>();
}

std::shared_ptr<DiscoverySink> ProbeSink::discovery(const std::string&) { return std::make_shared<IgnoredDiscovery>(); }

std::shared_ptr<ReconcileSink> FanoutSink::reconcile(const std::string& name, const std::string& target) {
  std::vector<std::shared_ptr<ReconcileSink>> children;
  for (ObservationSink* s : sinks_) children.push_back(s->reconcile(name, target));
  return std::make_shared<FanoutReconcile>(std::move(children));
}

std::shared_ptr<ProbeSink> FanoutSink::probe(const std::string& name, const std::string& kind) {
  std::vector<std::shared_ptr<ProbeSink>> probes;
  for (ObservationSink* s : sinks_) probes.push_back(s->probe(name, kind));
  return std::make_shared<FanoutProbe>(std::move(probes));
}

}  // namespace ghostwatch
