// Structured logging to stderr (journald and log pipelines read it there), one event per line,
// as logfmt (the default, as Prometheus exporters log) or JSON. Every event has `time`, `level`
// and `msg`; `probe` and `target` come from the thread's log::Context or explicit fields.
// Built on spdlog; every message and field passes through scrub(), so a secret that slipped
// into an error text is masked before it is written.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

namespace ghostwatch::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };
enum class Format { logfmt, json };

struct Field {
  std::string_view key;
  std::string_view value;
};
using Fields = std::initializer_list<Field>;

void set_level(Level level);
bool parse_level(std::string_view text, Level& out);
void set_format(Format format);
bool parse_format(std::string_view text, Format& out);
void write(Level level, std::string_view message, Fields fields = {});

inline void debug(std::string_view m, Fields f = {}) { write(Level::debug, m, f); }
inline void info(std::string_view m, Fields f = {}) { write(Level::info, m, f); }
inline void warn(std::string_view m, Fields f = {}) { write(Level::warn, m, f); }
inline void error(std::string_view m, Fields f = {}) { write(Level::error, m, f); }

// Names the probe (and target) that the current thread works for: every event it logs while
// the Context lives carries them as fields. Contexts nest; the innermost wins.
class Context {
 public:
  explicit Context(std::string probe, std::string target = "");
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  const std::string& probe() const { return probe_; }
  const std::string& target() const { return target_; }

 private:
  std::string probe_, target_;
  const Context* outer_;
};

// One event rendered as a line (without the newline), for tests and for the formatter.
std::string render(Format format, Level level, std::string_view time, std::string_view probe,
                   std::string_view target, std::string_view message, Fields fields);

}  // namespace ghostwatch::log
