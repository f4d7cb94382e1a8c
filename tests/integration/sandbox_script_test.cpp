// scripts/sandbox.sh itself, on a directory and ports of its own beside the test sandbox: `up`
// names a port that is taken (and who holds it) before touching anything, and a server whose
// initialisation did not finish is initialised again, never reused, so `up` after a failed `up`
// works.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/integration/sandbox.h"

namespace ghostwatch::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kPgPort = 27432, kMariaPort = 27306;

class SandboxScript : public SandboxTest {
 protected:
  const std::string dir_ = "/tmp/ghostwatch-sandbox-check-" + std::to_string(getpid());
  CommandResult sandbox(const std::string& verb) {
    return run_command({"/usr/bin/env", "GHOSTWATCH_SANDBOX_DIR=" + dir_, "GW_PG_PORT_PRIMARY=" + std::to_string(kPgPort),
                        "GW_MARIA_PORT_PRIMARY=" + std::to_string(kMariaPort), "/bin/bash", sandbox_script(), verb},
                       300s);
  }
  void TearDown() override { sandbox("down"); }
};

// A listening socket on 127.0.0.1:port for as long as it lives.
class Squatter {
 public:
  explicit Squatter(int port) : fd_(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(listen(fd_, 1), 0);
  }
  ~Squatter() { close(fd_); }

 private:
  int fd_;
};

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST_F(SandboxScript, NamesABusyPortAndNeverReusesAHalfInitialisedServer) {
  {
    Squatter squatter(kPgPort);
    const auto busy = sandbox("up");
    EXPECT_NE(busy.exit_code, 0);
    EXPECT_NE(busy.err.find("port " + std::to_string(kPgPort) + " (for pg-primary) is in use by ghostwatch_inte"), std::string::npos)
        << busy.err;
    EXPECT_NE(busy.err.find("(pid " + std::to_string(getpid()) + ")"), std::string::npos) << busy.err;
    EXPECT_FALSE(exists(dir_ + "/pg-primary")) << "nothing is initialised when a port is taken";
  }
  // What an interrupted initdb leaves: a data directory without the "initialised" mark.
  ASSERT_EQ(run_command({"/bin/mkdir", "-p", dir_ + "/pg-primary"}, 10s).exit_code, 0);
  std::ofstream(dir_ + "/pg-primary/PG_VERSION") << "15\n";
  const auto up = sandbox("up");
  ASSERT_EQ(up.exit_code, 0) << up.err;
  EXPECT_NE(up.err.find("pg-primary: its initialisation did not finish earlier; starting it over"), std::string::npos) << up.err;

  // The agent's role works on the re-made servers: a probe run through all of them.
  const std::string probe = "source " + dir_ + "/env.sh && " + ghostwatch_binary() + " probe --config " +
                            GHOSTWATCH_SOURCE_DIR + "/examples/sandbox.yaml --canaries 3 --output json";
  const auto measured = run_command({"/bin/bash", "-c", probe}, 120s);
  EXPECT_EQ(measured.exit_code, 0) << measured.out << measured.err;
  EXPECT_NE(measured.out.find("\"reachable\": true"), std::string::npos) << measured.out;

  // An interrupted pg_basebackup: only that replica is made again; a second up is quiet otherwise.
  std::remove((dir_ + "/pg-replica-1.done").c_str());
  const auto again = sandbox("up");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("pg-replica-1: its initialisation did not finish earlier"), std::string::npos) << again.err;
  EXPECT_EQ(again.err.find("pg-primary: its initialisation"), std::string::npos) << again.err;
  EXPECT_EQ(sandbox("status").exit_code, 0);
}

}  // namespace
}  // namespace ghostwatch::testing
