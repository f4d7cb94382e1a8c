#include "common/redact.h"

#include <algorithm>
#include <cctype>
#include <mutex>
#include <optional>
#include <set>

namespace ghostwatch {
namespace {

std::mutex g_mu;
// Longest first, so that a secret containing another is masked whole.
struct LongestFirst {
  bool operator()(const std::string& a, const std::string& b) const {
    return a.size() != b.size() ? a.size() > b.size() : a < b;
  }
};
std::set<std::string, LongestFirst> g_secrets;

// A URI starts with its scheme (postgresql://, mysql://, ...). "://" further in is part of a
// key=value DSN's value (application_name=http://x) and must not switch the parsing: the real
// password=... field would then go unmasked.
bool is_uri(std::string_view dsn) {
  const std::size_t sep = dsn.find("://");
  if (sep == std::string_view::npos || sep == 0) return false;
  return std::all_of(dsn.begin(), dsn.begin() + static_cast<std::ptrdiff_t>(sep), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

struct Span {
  std::size_t begin = 0, end = 0;  // the password value's bytes in the DSN
};

// libpq key=value syntax: key = value, value optionally single-quoted with \' and \\ escapes.
std::optional<Span> keyvalue_password_span(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    const std::size_t key_begin = i;
    while (i < s.size() && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    const std::string_view key = s.substr(key_begin, i - key_begin);
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i >= s.size() || s[i] != '=') return std::nullopt;
    ++i;
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    Span span{i, i};
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') i += (s[i] == '\\' && i + 1 < s.size()) ? 2 : 1;
      span.end = std::min(i + 1, s.size());
      i = span.end;
    } else {
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) i += (s[i] == '\\') ? 2 : 1;
      i = std::min(i, s.size());
      span.end = i;
    }
    if (key == "password") return span;
  }
  return std::nullopt;
}

std::optional<Span> uri_userinfo_password_span(std::string_view s) {
  const std::size_t authority = s.find("://") + 3;
  const std::size_t authority_end = std::min(s.find_first_of("/?#", authority), s.size());
  const std::size_t at = s.rfind('@', authority_end);
  if (at == std::string_view::npos || at < authority) return std::nullopt;
  const std::size_t colon = s.find(':', authority);
  if (colon == std::string_view::npos || colon > at) return std::nullopt;
  return Span{colon + 1, at};
}

std::optional<Span> uri_query_password_span(std::string_view s) {
  const std::size_t q = s.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::size_t i = q + 1;
  while (i < s.size()) {
    const std::size_t amp = std::min(s.find('&', i), s.size());
    const std::string_view param = s.substr(i, amp - i);
    if (param.rfind("password=", 0) == 0) return Span{i + 9, amp};
    i = amp + 1;
  }
  return std::nullopt;
}

std::string mask(std::string_view s, std::optional<Span> span) {
  if (!span || span->end <= span->begin) return std::string(s);
  std::string out(s.substr(0, span->begin));
  out += kRedacted;
  out += s.substr(span->end);
  return out;
}

std::string unquote_keyvalue(std::string_view v) {
  if (v.empty() || v.front() != '\'') {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (v[i] == '\\' && i + 1 < v.size()) ? v[++i] : v[i];
    return out;
  }
  std::string out;
  for (std::size_t i = 1; i < v.size() && v[i] != '\''; ++i) out += (v[i] == '\\' && i + 1 < v.size()) ? v[++i] : v[i];
  return out;
}

}  // namespace

std::string redact_dsn(std::string_view dsn) {
  if (!is_uri(dsn)) return mask(dsn, keyvalue_password_span(dsn));
  std::string once = mask(dsn, uri_userinfo_password_span(dsn));
  return mask(once, uri_query_password_span(once));
}

std::string dsn_password(std::string_view dsn) {
  if (!is_uri(dsn)) {
    auto span = keyvalue_password_span(dsn);
    return span ? unquote_keyvalue(dsn.substr(span->begin, span->end - span->begin)) : std::string();
  }
  for (auto span : {uri_userinfo_password_span(dsn), uri_query_password_span(dsn)}) {
    if (span && span->end > span->begin) return std::string(dsn.substr(span->begin, span->end - span->begin));
  }
  return {};
}

void register_secret(std::string_view secret) {
  // "***" is what masking writes: masking it changes nothing.
  if (secret.size() < 3 || secret == kRedacted) return;
  std::lock_guard lock(g_mu);
  g_secrets.emplace(secret);
}

void forget_secrets() {
  std::lock_guard lock(g_mu);
  g_secrets.clear();
}

namespace {

// The length of the valid UTF-8 sequence at `at`, 0 when it is not one.
std::size_t utf8_length(std::string_view text, std::size_t at) {
  const auto c = static_cast<unsigned char>(text[at]);
  const std::size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || at + n > text.size()) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(text[at + i]) & 0xC0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      out += (c < 0x20 && c != '\n' && c != '\t') || c == 0x7F ? '?' : static_cast<char>(c);
      ++i;
    } else if (const std::size_t n = utf8_length(text, i); n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += '?';
      ++i;
    }
  }
  return out;
}

std::string scrub(std::string_view text) {
  std::string out = printable(text);
  std::lock_guard lock(g_mu);
  // Masking can make a new occurrence from a secret's own asterisks and its neighbours
  // ("x**" in "xx**" becomes "x***", which holds "x**" again), so repeat until none is left.
  // Each replacement removes a character that is not '*' or shortens the text: this ends.
  for (bool replaced = true; replaced;) {
    replaced = false;
    for (const std::string& secret : g_secrets) {
      for (std::size_t pos = out.find(secret); pos != std::string::npos; pos = out.find(secret, pos)) {
        out.replace(pos, secret.size(), kRedacted);
        pos += kRedacted.size();
        replaced = true;
      }
    }
  }
  return out;
}

}  // namespace ghostwatch
