#include "common/resolver.h"

#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/net.h"

namespace ghostwatch {
namespace {

Result<std::vector<std::string>> addresses_of(const std::string& host) {
  if (is_ip_literal(host)) return std::vector<std::string>{host};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) return Error{"could not translate host name \"" + host + "\" to address: " + gai_strerror(rc)};
  std::vector<std::string> out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[NI_MAXHOST];
    if (getnameinfo(a->ai_addr, a->ai_addrlen, text, sizeof text, nullptr, 0, NI_NUMERICHOST) != 0) continue;
    if (std::find(out.begin(), out.end(), text) == out.end()) out.emplace_back(text);
  }
  freeaddrinfo(found);
  if (out.empty()) return Error{"could not translate host name \"" + host + "\" to address: no address"};
  return out;
}

// The resolver threads and their queue. Never destroyed: a thread may be inside getaddrinfo,
// which cannot be interrupted, when the process exits.
class Resolver {
 public:
  static Resolver& instance() {
    static Resolver* resolver = new Resolver;
    return *resolver;
  }
  void submit(std::shared_ptr<NameLookup> lookup) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(lookup));
      if (started_ < kThreads) {
        ++started_;
        std::thread([this] { serve(); }).detach();
      }
    }
    ready_.notify_one();
  }

 private:
  static constexpr int kThreads = 2;
  void serve() {
    for (;;) {
      std::shared_ptr<NameLookup> lookup;
      {
        std::unique_lock lock(mu_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        lookup = std::move(queue_.front());
        queue_.pop_front();
      }
      lookup->run();
    }
  }
  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<NameLookup>> queue_;
  int started_ = 0;
};

}  // namespace

NameLookup::NameLookup(std::vector<std::string> hosts)
    : hosts_(std::move(hosts)), fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Result<std::vector<std::vector<std::string>>> NameLookup::addresses_of_all() const {
  std::vector<std::vector<std::string>> all;
  for (const std::string& host : hosts_) {
    auto one = addresses_of(host);
    if (!one) return one.error();
    all.push_back(std::move(one.value()));
  }
  return all;
}

const Result<std::vector<std::vector<std::string>>>& NameLookup::addresses() const {
  (void)done();  // the acquire that makes the resolver thread's answer visible here
  return addresses_;
}

NameLookup::~NameLookup() {
  if (fd_ >= 0) close(fd_);
}

void NameLookup::run() {
  addresses_ = addresses_of_all();
  done_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  if (fd_ >= 0 && write(fd_, &one, sizeof one) < 0) {
    // Nothing to do: the reader also checks done() at its deadline.
  }
}

std::shared_ptr<NameLookup> look_up(std::vector<std::string> hosts) {
  auto lookup = std::make_shared<NameLookup>(std::move(hosts));
  Resolver::instance().submit(lookup);
  return lookup;
}

}  // namespace ghostwatch
