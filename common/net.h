// Whether a host is given as an address (IPv4 or IPv6) rather than a name: connecting to a name
// means a blocking lookup, which the event loop must not make.
#pragma once

#include <arpa/inet.h>

#include <string>

namespace ghostwatch {

inline bool is_ip_literal(const std::string& host) {
  in6_addr addr;
  return inet_pton(AF_INET, host.c_str(), &addr) == 1 || inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

}  // namespace ghostwatch
