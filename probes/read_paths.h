// The read path kinds: through a DSN (a load balancer or pooler; a fresh connection per read or
// a pool), through the probe's own targets chosen by a policy, or through an HTTP endpoint.
#pragma once

#include <memory>

#include "probes/canary_backend.h"
#include "probes/probe_config.h"
#include "probes/read_path.h"

namespace ghostwatch {

// `backend` must outlive the path. The probe's config supplies targets and timeouts.
std::unique_ptr<ReadPath> make_read_path(const ProbeConfig& probe, const ReadPathConfig& path,
                                         CanaryBackend& backend, const std::string& agent_id);

// Fills an HTTP read path's URL template: {agent}, {probe} and {seq}, percent-encoded.
std::string expand_url(const std::string& url_template, const std::string& agent, const std::string& probe,
                       int64_t seq);

// Finds the seq in an HTTP response body by JSON pointer (a number or a numeric string) or by
// the first group of a regular expression. An error says what was missing.
Result<int64_t> extract_seq(const std::string& body, const ReadPathConfig& path);

}  // namespace ghostwatch
