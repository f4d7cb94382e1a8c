// The dns source over c-ares: its queries run on the source's own thread, with c-ares' sockets
// polled here (poll(2), not select: the agent may hold more than FD_SETSIZE descriptors) within
// a deadline, and cancelled when the agent stops.
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include "probes/discovery/discovery.h"

namespace ghostwatch::discovery {
namespace {

constexpr auto kPollSlice = std::chrono::milliseconds(100);  // how soon a stop is noticed

void init_library_once() {
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

// An answer that names no records is an answer; the rest is a failure.
bool no_records(int status) { return status == ARES_ENOTFOUND || status == ARES_ENODATA; }

std::string strip_dot(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

class Channel {
 public:
  Channel(const DiscoverySourceConfig& config, Duration timeout) {
    init_library_once();
    ares_options options{};
    options.timeout = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
    options.tries = 2;
    status_ = ares_init_options(&channel_, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (status_ == ARES_SUCCESS && !config.server.empty()) status_ = ares_set_servers_ports_csv(channel_, config.server.c_str());
  }
  ~Channel() {
    if (channel_) ares_destroy(channel_);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  Status ready() const {
    if (status_ == ARES_SUCCESS) return ok_status();
    return Error{std::string("DNS resolver: ") + ares_strerror(status_)};
  }
  ares_channel get() const { return channel_; }

  // Drives c-ares until `done` or `stop`; every query has its own timeouts and tries.
  void run(const bool& done, std::stop_token stop) {
    while (!done) {
      if (stop.stop_requested()) {
        ares_cancel(channel_);  // each callback runs with ARES_ECANCELLED
        continue;
      }
      ares_socket_t socks[ARES_GETSOCK_MAXNUM];
      const int bits = ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
      std::vector<pollfd> fds;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
        if (events) fds.push_back(pollfd{socks[i], events, 0});
      }
      timeval slice{0, static_cast<suseconds_t>(std::chrono::microseconds(kPollSlice).count())}, wait{};
      const timeval* next = ares_timeout(channel_, &slice, &wait);
      const int ms = static_cast<int>(next->tv_sec * 1000 + next->tv_usec / 1000);
      const int n = poll(fds.data(), fds.size(), ms);
      if (n <= 0) {
        ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // timeouts
        continue;
      }
      for (const pollfd& p : fds) {
        const bool readable = p.revents & (POLLIN | POLLERR | POLLHUP), writable = p.revents & POLLOUT;
        if (readable || writable) {
          ares_process_fd(channel_, readable ? p.fd : ARES_SOCKET_BAD, writable ? p.fd : ARES_SOCKET_BAD);
        }
      }
    }
  }

 private:
  ares_channel channel_ = nullptr;
  int status_ = ARES_SUCCESS;
};

struct Addresses {
  bool done = false;
  int status = ARES_SUCCESS;
  std::vector<std::string> list;
};

void on_addresses(void* arg, int status, int, ares_addrinfo* info) {
  auto* out = static_cast<Addresses*>(arg);
  out->done = true;
  out->status = status;
  if (status != ARES_SUCCESS || info == nullptr) return;
  for (ares_addrinfo_node* n = info->nodes; n != nullptr; n = n->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = n->ai_family == AF_INET ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(n->ai_addr)->sin_addr)
                                              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(n->ai_addr)->sin6_addr);
    if (inet_ntop(n->ai_family, raw, text, sizeof text) == nullptr) continue;
    if (std::find(out->list.begin(), out->list.end(), text) == out->list.end()) out->list.push_back(text);
  }
  ares_freeaddrinfo(info);
}

struct Services {
  bool done = false;
  int status = ARES_SUCCESS;
  std::vector<std::pair<std::string, int>> list;  // target host, port
};

void on_srv(void* arg, int status, int, unsigned char* answer, int length) {
  auto* out = static_cast<Services*>(arg);
  out->done = true;
  out->status = status;
  if (status != ARES_SUCCESS) return;
  ares_srv_reply* replies = nullptr;
  out->status = ares_parse_srv_reply(answer, length, &replies);
  for (ares_srv_reply* r = replies; r != nullptr; r = r->next) out->list.emplace_back(strip_dot(r->host), r->port);
  if (replies) ares_free_data(replies);
}

Error failure(const std::string& what, int status) { return Error{what + ": " + ares_strerror(status)}; }

class DnsSource final : public Source {
 public:
  DnsSource(DiscoverySourceConfig config, Duration timeout) : config_(std::move(config)), timeout_(timeout) {}

  Result<std::vector<Member>> list(std::stop_token stop) override {
    Channel channel(config_, timeout_);
    if (Status ready = channel.ready(); !ready) return ready.error();
    return config_.srv.empty() ? by_address(channel, stop) : by_service(channel, stop);
  }

 private:
  Result<std::vector<std::string>> addresses(Channel& channel, const std::string& name, std::stop_token stop) {
    Addresses found;
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    ares_getaddrinfo(channel.get(), name.c_str(), nullptr, &hints, &on_addresses, &found);
    channel.run(found.done, stop);
    if (no_records(found.status)) return std::vector<std::string>{};
    if (found.status != ARES_SUCCESS) return failure(name, found.status);
    return found.list;
  }

  Result<std::vector<Member>> by_address(Channel& channel, std::stop_token stop) {
    auto found = addresses(channel, config_.name, stop);
    if (!found) return found.error();
    std::vector<Member> out;
    for (const std::string& a : found.value()) {
      Member m;
      m.name = label_value(a);
      m.host = a;
      m.port = config_.port;
      out.push_back(std::move(m));
    }
    return out;
  }

  Result<std::vector<Member>> by_service(Channel& channel, std::stop_token stop) {
    Services services;
    ares_query(channel.get(), config_.srv.c_str(), ns_c_in, ns_t_srv, &on_srv, &services);
    channel.run(services.done, stop);
    if (no_records(services.status)) return std::vector<Member>{};
    if (services.status != ARES_SUCCESS) return failure(config_.srv + " SRV", services.status);
    std::vector<Member> out;
    for (const auto& [host, port] : services.list) {
      auto found = addresses(channel, host, stop);
      if (!found) return found.error();
      if (found->empty()) continue;  // a target without an address cannot be polled
      Member m;
      m.name = label_value(host);
      m.host = host;
      m.address = found->front();
      m.port = port;
      out.push_back(std::move(m));
    }
    return out;
  }

  DiscoverySourceConfig config_;
  Duration timeout_;
};

}  // namespace

std::unique_ptr<Source> dns_source(const DiscoverySourceConfig& config, Duration timeout) {
  return std::make_unique<DnsSource>(config, timeout);
}

}  // namespace ghostwatch::discovery
