// A stand-in for an application that exposes the canary through its own read path: an HTTP
// server answering GET /canary/<agent>/<probe> with {"seq": N} read from a PostgreSQL replica
// (404 when there is no canary row). Used by the integration tests of HTTP read paths.
//
//   canary_http_server PORT "DSN"
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>

namespace {

std::mutex g_db_mu;
PGconn* g_db = nullptr;

std::string url_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Returns {status, body}.
std::pair<int, std::string> canary(const std::string& agent, const std::string& probe, const char* dsn) {
  std::lock_guard lock(g_db_mu);
  if (g_db == nullptr || PQstatus(g_db) != CONNECTION_OK) {
    if (g_db) PQfinish(g_db);
    g_db = PQconnectdb(dsn);
  }
  const char* params[] = {agent.c_str(), probe.c_str()};
  PGresult* res = PQexecParams(g_db, "SELECT seq FROM ghostwatch.canary WHERE agent_id = $1 AND probe = $2", 2,
                               nullptr, params, nullptr, nullptr, 0);
  std::pair<int, std::string> out{500, "{\"error\":\"query failed\"}"};
  if (PQresultStatus(res) == PGRES_TUPLES_OK) {
    out = PQntuples(res) == 0 ? std::make_pair(404, std::string("{\"error\":\"no canary\"}"))
                              : std::make_pair(200, std::string("{\"seq\":") + PQgetvalue(res, 0, 0) + "}");
  }
  PQclear(res);
  return out;
}

void serve(int fd, const char* dsn) {
  char buf[4096];
  const ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
  std::pair<int, std::string> reply{400, "{}"};
  if (n > 0) {
    buf[n] = '\0';
    char path[2048] = {};
    if (std::sscanf(buf, "GET %2047s", path) == 1 && std::strncmp(path, "/canary/", 8) == 0) {
      const std::string rest = path + 8;
      const auto slash = rest.find('/');
      if (slash != std::string::npos) {
        std::string probe = rest.substr(slash + 1);
        probe = probe.substr(0, probe.find('?'));
        reply = canary(url_decode(rest.substr(0, slash)), url_decode(probe), dsn);
      }
    } else {
      reply = {404, "{}"};
    }
  }
  const std::string response = "HTTP/1.1 " + std::to_string(reply.first) +
                               " X\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                               std::to_string(reply.second.size()) + "\r\n\r\n" + reply.second;
  (void)send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s PORT DSN\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(argv[1])));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 64) != 0) {
    std::perror("bind/listen");
    return 1;
  }
  while (true) {
    const int fd = accept(listener, nullptr, nullptr);
    if (fd >= 0) std::thread(serve, fd, argv[2]).detach();
  }
}
