#include "probes/mysql/mysql_uri.h"

#include <cctype>
#include <charconv>

namespace ghostwatch::mysql {
namespace {

std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    unsigned value = 0;
    auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, value, 16);
    if (r.ec != std::errc() || r.ptr != s.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

Status apply_option(Uri& uri, std::string_view key, std::string_view value) {
  if (key == "socket") uri.socket = std::string(value);
  else if (key == "ssl-ca") uri.ssl_ca = std::string(value);
  else if (key == "ssl-cert") uri.ssl_cert = std::string(value);
  else if (key == "ssl-key") uri.ssl_key = std::string(value);
  else if (key == "ssl-mode") {
    if (value != "disabled" && value != "preferred" && value != "required" && value != "verify_ca" &&
        value != "verify_identity") {
      return Error{"ssl-mode must be disabled, preferred, required, verify_ca or verify_identity"};
    }
    uri.ssl_mode = std::string(value);
  } else {
    return Error{"unknown URI option '" + std::string(key) + "' (known: socket, ssl-mode, ssl-ca, ssl-cert, ssl-key)"};
  }
  return ok_status();
}

}  // namespace

Result<Uri> parse_uri(std::string_view text) {
  Uri uri;
  std::string_view rest;
  for (std::string_view scheme : {"mysql://", "mariadb://"}) {
    if (text.substr(0, scheme.size()) == scheme) rest = text.substr(scheme.size());
  }
  if (rest.data() == nullptr) return Error{"expected a mysql:// URI (mysql://user:password@host:port/database)"};
  const std::size_t query = rest.find('?');
  std::string_view options = query == std::string_view::npos ? "" : rest.substr(query + 1);
  rest = rest.substr(0, query);
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    auto db = percent_decode(rest.substr(slash + 1));
    if (!db) return Error{"bad percent-encoding in the database name"};
    uri.database = *db;
  }
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const std::size_t colon = userinfo.find(':');
    auto user = percent_decode(userinfo.substr(0, colon));
    if (!user) return Error{"bad percent-encoding in the user name"};
    uri.user = *user;
    if (colon != std::string_view::npos) {
      auto password = percent_decode(userinfo.substr(colon + 1));
      if (!password) return Error{"bad percent-encoding in the password"};
      uri.password = *password;
    }
  }
  std::string_view host = authority;
  std::optional<std::string_view> port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return Error{"unclosed '[' in the host"};
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return Error{"expected ':port' after the IPv6 host"};
      port_text = authority.substr(close + 2);
    }
  } else if (const std::size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
  }
  if (!host.empty()) uri.host = std::string(host);
  if (port_text) {
    unsigned port = 0;
    auto r = std::from_chars(port_text->data(), port_text->data() + port_text->size(), port);
    if (r.ec != std::errc() || r.ptr != port_text->data() + port_text->size() || port == 0 || port > 65535) {
      return Error{"bad port '" + std::string(*port_text) + "'"};
    }
    uri.port = port;
  }
  while (!options.empty()) {
    const std::size_t amp = options.find('&');
    const std::string_view option = options.substr(0, amp);
    options = amp == std::string_view::npos ? "" : options.substr(amp + 1);
    if (option.empty()) continue;
    const std::size_t eq = option.find('=');
    if (eq == std::string_view::npos) return Error{"URI option '" + std::string(option) + "' has no value"};
    auto value = percent_decode(option.substr(eq + 1));
    if (!value) return Error{"bad percent-encoding in URI option '" + std::string(option.substr(0, eq)) + "'"};
    if (Status s = apply_option(uri, option.substr(0, eq), *value); !s) return s.error();
  }
  if (uri.ssl_cert.empty() != uri.ssl_key.empty()) return Error{"ssl-cert and ssl-key go together"};
  if ((uri.ssl_mode == "verify_ca" || uri.ssl_mode == "verify_identity") && uri.ssl_ca.empty()) {
    return Error{"ssl-mode=" + uri.ssl_mode + " needs ssl-ca (the CA that signed the server's certificate)"};
  }
  return uri;
}

}  // namespace ghostwatch::mysql
