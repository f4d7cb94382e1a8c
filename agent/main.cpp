#include <malloc.h>
#include <sys/resource.h>

#include "agent/cli.h"

int main(int argc, char** argv) {
  // RSS that follows live memory, for an agent that runs for months (bench/soak.sh):
  // - one malloc arena instead of glibc's up to 8 per core: the threads mostly wait on the
  //   network, and with an arena per thread the buffers freed by each outage of many targets
  //   stayed spread over the arenas (RSS crept ~0.7 MB per outage of 40 MariaDB targets);
  //   per-thread caches still serve most small allocations without the arena lock;
  // - large blocks are mapped and unmapped on their own: each MariaDB connection's
  //   60 KB non-blocking context stack, freed by an outage, otherwise left a hole that small
  //   allocations of other threads split, and the reconnects grew the heap again (+3.9 MB,
  //   then +1.9 MB, at restarts of a replica under 50 targets);
  // - from 16000 bytes, with no padding at the heap's top, so that libpq's two 16 KiB buffers
  //   per connection are mapped on their own (the heap's top rarely has room for them): only
  //   the pages they use are resident (~4 KB each), where in the heap they landed on pages
  //   that other blocks had touched (at 1000 targets: 43.6 -> 39.7 MB).
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 16000);
  mallopt(M_TOP_PAD, 0);
  // A socket per target: 1000 targets pass the usual soft limit of 1024 descriptors, which is
  // there for select(), which the agent does not use. The hard limit stays as set.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  return ghostwatch::cli_main(argc, argv);
}
