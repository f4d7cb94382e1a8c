// A TCP relay for the fault suite: listens on LISTEN_ADDR:PORT and forwards each connection to
// TARGET_ADDR:PORT, so that an agent inside a network namespace the test made can reach the
// sandbox's loopback servers through the namespace's veth link (where nftables can black-hole
// them). A thread pair per connection; runs until killed.
//
//   tcp_relay LISTEN_ADDR:PORT TARGET_ADDR:PORT [LISTEN_ADDR:PORT TARGET_ADDR:PORT ...]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

sockaddr_in parse(const std::string& text) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  const auto colon = text.rfind(':');
  a.sin_port = htons(static_cast<uint16_t>(std::atoi(text.substr(colon + 1).c_str())));
  inet_pton(AF_INET, text.substr(0, colon).c_str(), &a.sin_addr);
  return a;
}

void pump(int from, int to) {
  char buf[16384];
  for (ssize_t n; (n = recv(from, buf, sizeof buf, 0)) > 0;) {
    if (send(to, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) break;
  }
  shutdown(to, SHUT_WR);
  shutdown(from, SHUT_RD);
}

void serve(int listener, sockaddr_in target) {
  for (;;) {
    const int client = accept(listener, nullptr, nullptr);
    if (client < 0) continue;
    std::thread([client, target] {
      const int upstream = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(upstream, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0) {
        close(client);
        close(upstream);
        return;
      }
      std::thread back(pump, upstream, client);
      pump(client, upstream);
      back.join();
      close(client);
      close(upstream);
    }).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc % 2 != 1) {
    std::fprintf(stderr, "usage: tcp_relay LISTEN_ADDR:PORT TARGET_ADDR:PORT [...]\n");
    return 2;
  }
  std::vector<std::thread> servers;
  for (int i = 1; i + 1 < argc; i += 2) {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const sockaddr_in at = parse(argv[i]);
    if (bind(listener, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0 || listen(listener, 64) != 0) {
      std::perror(argv[i]);
      return 1;
    }
    servers.emplace_back(serve, listener, parse(argv[i + 1]));
  }
  std::printf("relaying\n");
  std::fflush(stdout);
  for (auto& s : servers) s.join();
}
