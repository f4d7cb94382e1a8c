// Cursor: a position in a parsed YAML document (its node, its file, line and column, and its
// key path such as probes[0].interval), with the strict typed accessors that config files use:
// every failure throws ConfigError naming file:line:col and the key path.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "agent/config.h"
#include "agent/duration.h"
#include "common/parse_number.h"
#include "common/small_file.h"

namespace ghostwatch {

// Where a value sits: the file, its YAML node (for line/column) and its key path.
class Cursor {
 public:
  Cursor(const std::string& source, YAML::Node node, std::string path)
      : source_(source), node_(std::move(node)), path_(std::move(path)) {}

  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }

  // A node looked up by a key that is not there has no position: the message then names only
  // the key path.
  [[noreturn]] void fail(const std::string& message) const {
    fail_at(node_.IsDefined() ? node_.Mark() : YAML::Mark::null_mark(), path_, message);
  }

  [[noreturn]] void fail_at(const YAML::Mark& mark, const std::string& path, const std::string& message) const {
    std::ostringstream out;
    out << source_;
    if (!mark.is_null()) out << ':' << mark.line + 1 << ':' << mark.column + 1;
    out << ": " << (path.empty() ? "(top level)" : path) << ": " << message;
    throw ConfigError(out.str());
  }

  Cursor child(const std::string& key) const {
    return Cursor(source_, node_[key], path_.empty() ? key : path_ + "." + key);
  }
  Cursor item(std::size_t i) const { return Cursor(source_, node_[i], path_ + "[" + std::to_string(i) + "]"); }

  void expect_map() const {
    if (!node_.IsMap()) fail("expected a mapping (key: value lines)");
  }
  void expect_sequence() const {
    if (!node_.IsSequence()) fail("expected a list");
  }

  // Rejects keys not in `allowed`, pointing at the offending key.
  void check_keys(std::initializer_list<std::string_view> allowed) const {
    expect_map();
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        fail_at(it->first.Mark(), path_.empty() ? key : path_ + "." + key,
                "unknown key '" + key + "' (allowed here: " + list + ")");
      }
    }
  }

  bool has(const std::string& key) const { return node_[key].IsDefined() && !node_[key].IsNull(); }

  Cursor require(const std::string& key) const {
    if (!has(key)) fail("missing required key '" + key + "'");
    return child(key);
  }

  std::string as_string() const {
    if (!node_.IsScalar()) fail("expected a string");
    return expand_env(node_.Scalar());
  }

  long as_int(long min, long max) const {
    if (!node_.IsScalar()) fail("expected a whole number");
    auto v = parse_number<long>(std::string_view(node_.Scalar()));
    if (!v) fail("expected a whole number, got '" + node_.Scalar() + "'");
    if (*v < min || *v > max) fail(std::to_string(*v) + " is outside " + std::to_string(min) + ".." + std::to_string(max));
    return *v;
  }

  bool as_bool() const {
    if (!node_.IsScalar()) fail("expected true or false");
    const std::string& v = node_.Scalar();
    if (v == "true") return true;
    if (v == "false") return false;
    fail("expected true or false, got '" + v + "'");
  }

  double as_double() const {
    if (!node_.IsScalar()) fail("expected a number");
    auto v = parse_number<double>(std::string_view(node_.Scalar()));
    if (!v) fail("expected a number, got '" + node_.Scalar() + "'");
    return *v;
  }

  // One of `choices`, returned as its index.
  std::size_t as_choice(std::initializer_list<std::string_view> choices) const {
    const std::string v = as_string();
    std::size_t i = 0;
    std::string list;
    for (auto c : choices) {
      if (v == c) return i;
      list += (list.empty() ? "" : ", ") + std::string(c);
      ++i;
    }
    fail("'" + v + "' is not one of: " + list);
  }

  Duration as_duration() const {
    if (!node_.IsScalar()) fail("expected a duration such as 5ms, 1s or 2m");
    auto d = parse_duration(node_.Scalar());
    if (!d) fail("bad duration '" + node_.Scalar() + "' (use a number and a unit: 250us, 5ms, 1s, 2m, 1h)");
    return *d;
  }

 private:
  // Replaces ${NAME} with the environment variable's value; an unset variable is an error. A
  // plain scan: std::regex recursed once per character and overflowed a small thread stack (an
  // HTTP reload runs on civetweb's) on long values.
  std::string expand_env(const std::string& text) const {
    auto name_char = [](char c, bool first) {
      return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9');
    };
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
      const std::size_t open = text.find("${", i);
      if (open == std::string::npos) break;
      std::size_t end = open + 2;
      while (end < text.size() && name_char(text[end], end == open + 2)) ++end;
      if (end == open + 2 || end >= text.size() || text[end] != '}') {  // not a ${NAME}: kept as it is
        out.append(text, i, open + 2 - i);
        i = open + 2;
        continue;
      }
      const std::string name = text.substr(open + 2, end - open - 2);
      const char* value = std::getenv(name.c_str());
      if (value == nullptr) fail("environment variable " + name + " is not set");
      out.append(text, i, open - i);
      out += value;
      i = end + 1;
    }
    out.append(text, i);
    return out;
  }

  std::string source_;
  YAML::Node node_;
  std::string path_;
};

// The whole file; ConfigError "<path>: cannot open the <what>" when it cannot be read.
inline std::string read_config_file(const std::string& path, const std::string& what) {
  auto text = read_small_file(path, 16 * 1024 * 1024);
  if (!text && text.error().code == "unreadable") throw ConfigError(path + ": cannot open the " + what);
  if (!text) throw ConfigError(path + ": cannot use it as the " + what + ": " + text.error().message);
  return text.value();
}

// Parses `text` as YAML, turning syntax errors into ConfigError with file:line:col.
inline YAML::Node load_yaml(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": YAML syntax error: " + e.msg);
  }
}

}  // namespace ghostwatch
