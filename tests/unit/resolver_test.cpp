#include "common/resolver.h"

#include <poll.h>

#include <gtest/gtest.h>

namespace ghostwatch {
namespace {

// Waits on the lookup's descriptor as the event loop would.
bool signalled_within(const NameLookup& lookup, int ms) {
  pollfd p{lookup.fd(), POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

TEST(Resolver, LooksUpNamesOffTheCallersThreadAndSignalsTheDescriptor) {
  auto lookup = look_up({"localhost", "127.0.0.2"});
  ASSERT_GE(lookup->fd(), 0);
  ASSERT_TRUE(signalled_within(*lookup, 10000));
  ASSERT_TRUE(lookup->done());
  ASSERT_TRUE(lookup->addresses().ok()) << lookup->addresses().error().message;
  const auto& found = lookup->addresses().value();
  ASSERT_EQ(found.size(), 2u);
  EXPECT_NE(std::find(found[0].begin(), found[0].end(), "127.0.0.1"), found[0].end()) << "localhost, from /etc/hosts";
  EXPECT_EQ(found[1], std::vector<std::string>{"127.0.0.2"}) << "an address is its own answer";
}

TEST(Resolver, ANameWithoutAddressIsAnErrorNamingIt) {
  auto lookup = look_up({"localhost", "no-such-host.invalid"});
  ASSERT_TRUE(signalled_within(*lookup, 30000));
  ASSERT_TRUE(lookup->done());
  ASSERT_FALSE(lookup->addresses().ok());
  EXPECT_NE(lookup->addresses().error().message.find("could not translate host name \"no-such-host.invalid\""),
            std::string::npos)
      << lookup->addresses().error().message;
}

TEST(Resolver, AnAbandonedLookupRunsToItsEndHarmlessly) {
  for (int i = 0; i < 20; ++i) look_up({"localhost"});  // dropped at once
  auto last = look_up({"localhost"});
  EXPECT_TRUE(signalled_within(*last, 10000)) << "the queue drains";
}

}  // namespace
}  // namespace ghostwatch
