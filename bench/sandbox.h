// What the benchmarks that run against a sandbox share: its environment (scripts/sandbox.sh up
// writes env.sh), a connection that must work, or the run stops with the reason, and the
// process's own CPU time.
#pragma once

#include <libpq-fe.h>
#include <sys/resource.h>

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

// This process's CPU time so far, user and system, in seconds.
inline double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
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
