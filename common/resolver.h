// Name lookups off the event loop. getaddrinfo blocks, and libpq, the MariaDB connector and a
// plain connect() would all call it on the loop's thread; instead a reader asks the process's
// resolver, watches the lookup's descriptor like a socket, and connects to the addresses it
// gets. Two resolver threads, started at the first lookup, serve every probe: a lookup that
// hangs (an unanswering DNS server) holds one of them, never the loop.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace ghostwatch {

class NameLookup {
 public:
  explicit NameLookup(std::vector<std::string> hosts);
  ~NameLookup();
  NameLookup(const NameLookup&) = delete;
  NameLookup& operator=(const NameLookup&) = delete;

  // Readable once the lookup is over (an eventfd); -1 if the kernel refused one.
  int fd() const { return fd_; }
  bool done() const { return done_.load(std::memory_order_acquire); }
  // After done(): for each host in order, its numeric addresses in getaddrinfo's order (an
  // address given as such is its own answer); or why a host has none.
  const Result<std::vector<std::vector<std::string>>>& addresses() const;

  const std::vector<std::string>& hosts() const { return hosts_; }
  void run();  // the lookup itself (a resolver thread)

 private:
  Result<std::vector<std::vector<std::string>>> addresses_of_all() const;
  std::vector<std::string> hosts_;
  int fd_ = -1;
  std::atomic<bool> done_{false};
  Result<std::vector<std::vector<std::string>>> addresses_ = std::vector<std::vector<std::string>>();
};

// Starts looking up `hosts` on a resolver thread. Dropping the handle abandons the lookup (it
// still runs to its end).
std::shared_ptr<NameLookup> look_up(std::vector<std::string> hosts);

}  // namespace ghostwatch
