#include "common/log.h"

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>
#include <spdlog/formatter.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "common/redact.h"

namespace ghostwatch::log {

namespace {

// The thread's innermost Context, and the explicit fields of the event it is writing (spdlog's
// synchronous logger formats on the calling thread, so the formatter sees them).
struct Current {
  static thread_local const Context* context;
  static thread_local const Fields* fields;
};
thread_local const Context* Current::context = nullptr;
thread_local const Fields* Current::fields = nullptr;

std::atomic<Format> g_format{Format::logfmt};

const char* name(Level l) {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "?";
}

spdlog::level::level_enum to_spdlog(Level l) {
  switch (l) {
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

Level from_spdlog(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return Level::debug;
    case spdlog::level::info: return Level::info;
    case spdlog::level::warn: return Level::warn;
    default: return Level::error;
  }
}

// logfmt quotes a value only when it has to: empty, or holding a space, '=', '"' or a control.
void append_logfmt_value(std::string& out, std::string_view v) {
  bool quote = v.empty();
  for (char c : v) quote = quote || c == ' ' || c == '=' || c == '"' || static_cast<unsigned char>(c) < 0x20;
  if (!quote) {
    out += v;
    return;
  }
  out += '"';
  for (char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
  out += '"';
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

// Renders spdlog's events in our formats, adding the thread's context and explicit fields.
class EventFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const Context* c = Current::context;
    const std::string line = render(g_format.load(), from_spdlog(msg.level), rfc3339(msg.time),
                                    c ? std::string_view(c->probe()) : "", c ? std::string_view(c->target()) : "",
                                    std::string_view(msg.payload.data(), msg.payload.size()),
                                    Current::fields ? *Current::fields : Fields{});
    dest.append(line.data(), line.data() + line.size());
    dest.push_back('\n');
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<EventFormatter>(); }
};

spdlog::logger& logger() {
  static spdlog::logger* instance = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto* l = new spdlog::logger("ghostwatch", sink);  // lives for the process: threads log until exit
    l->set_formatter(std::make_unique<EventFormatter>());
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *instance;
}

}  // namespace

Context::Context(std::string probe, std::string target)
    : probe_(std::move(probe)), target_(std::move(target)), outer_(Current::context) {
  Current::context = this;
}

Context::~Context() { Current::context = outer_; }

std::string render(Format format, Level level, std::string_view time, std::string_view probe,
                   std::string_view target, std::string_view message, Fields fields) {
  std::vector<std::pair<std::string_view, std::string>> kv;
  kv.emplace_back("time", std::string(time));
  kv.emplace_back("level", name(level));
  bool explicit_probe = false, explicit_target = false;
  for (const Field& f : fields) {
    explicit_probe = explicit_probe || f.key == "probe";
    explicit_target = explicit_target || f.key == "target";
  }
  if (!probe.empty() && !explicit_probe) kv.emplace_back("probe", scrub(probe));
  if (!target.empty() && !explicit_target) kv.emplace_back("target", scrub(target));
  for (const Field& f : fields) kv.emplace_back(f.key, scrub(f.value));
  kv.emplace_back("msg", scrub(message));
  std::string out;
  if (format == Format::json) {
    nlohmann::ordered_json j;
    for (auto& [k, v] : kv) j[std::string(k)] = v;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  for (auto& [k, v] : kv) {
    if (!out.empty()) out += ' ';
    out += k;
    out += '=';
    append_logfmt_value(out, v);
  }
  return out;
}

void set_level(Level level) { logger().set_level(to_spdlog(level)); }

bool parse_level(std::string_view text, Level& out) {
  for (Level l : {Level::debug, Level::info, Level::warn, Level::error}) {
    if (text == name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

void set_format(Format format) { g_format = format; }

bool parse_format(std::string_view text, Format& out) {
  if (text == "logfmt") out = Format::logfmt;
  else if (text == "json") out = Format::json;
  else return false;
  return true;
}

void write(Level level, std::string_view message, Fields fields) {
  spdlog::logger& l = logger();
  if (!l.should_log(to_spdlog(level))) return;
  Current::fields = &fields;
  l.log(to_spdlog(level), spdlog::string_view_t(message.data(), message.size()));
  Current::fields = nullptr;
}

}  // namespace ghostwatch::log
