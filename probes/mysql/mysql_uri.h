// MySQL/MariaDB connection URIs: mysql://user:password@host:port/database?option=value&...
// (mariadb:// is accepted too). User, password and database are percent-decoded.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace ghostwatch::mysql {

struct Uri {
  std::string user;
  std::optional<std::string> password;
  std::string host = "127.0.0.1";
  unsigned port = 3306;
  std::string database;
  std::string socket;   // ?socket=/path: a unix socket instead of TCP
  // ?ssl-mode=disabled|preferred|required|verify_ca|verify_identity ("" = connector default)
  std::string ssl_mode;
  std::string ssl_ca;    // ?ssl-ca=/path: the CA that signed the server's certificate
  std::string ssl_cert;  // ?ssl-cert=/path and ?ssl-key=/path: a client certificate (REQUIRE X509)
  std::string ssl_key;
};

// Errors name the offending part and never quote the password.
Result<Uri> parse_uri(std::string_view text);

}  // namespace ghostwatch::mysql
