#include <malloc.h>

#include "agent/cli.h"

int main(int argc, char** argv) {
  // One malloc arena instead of glibc's up to 8 per core: the agent's threads mostly wait on the
  // network, and with an arena per thread every reconnect storm (a server restarting under 50
  // targets) left the freed buffers spread over many arenas, so RSS crept up by hundreds of kB
  // per outage (bench/soak.sh). Per-thread caches still serve most small allocations lock-free.
  mallopt(M_ARENA_MAX, 1);
  return ghostwatch::cli_main(argc, argv);
}
