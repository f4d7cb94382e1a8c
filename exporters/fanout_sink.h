// FanoutSink: forwards every observation to several sinks (e.g. Prometheus and the live view).
#pragma once

#include <vector>

#include "exporters/sink.h"

namespace ghostwatch {

class FanoutSink final : public ObservationSink {
 public:
  explicit FanoutSink(std::vector<ObservationSink*> sinks) : sinks_(std::move(sinks)) {}
  std::shared_ptr<ProbeSink> probe(const std::string& name, const std::string& kind) override;
  std::shared_ptr<ReconcileSink> reconcile(const std::string& name, const std::string& target) override;

 private:
  std::vector<ObservationSink*> sinks_;  // not owned; must outlive the probes
};

}  // namespace ghostwatch
