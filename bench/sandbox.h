// What the benchmarks that run against a sandbox share: its environment (scripts/sandbox.sh up
// writes env.sh) and a connection that must work, or the run stops with the reason.
#pragma once

#include <libpq-fe.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace ghostwatch::bench {

inline const char* sandbox_env(const char* name) {
  const char* v = std::getenv(name);
  if (!v) {
    std::fprintf(stderr, "%s is not set: source the sandbox's env.sh\n", name);
    std::exit(2);
  }
  return v;
}

inline PGconn* connect_pg(const std::string& dsn) {
  PGconn* c = PQconnectdb(dsn.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::fprintf(stderr, "postgres: %s", PQerrorMessage(c));
    std::exit(1);
  }
  return c;
}

}  // namespace ghostwatch::bench
