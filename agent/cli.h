// The ghostwatch command line: run, probe, check-config, version. Exit codes: 0 ok; 1 a
// probe found a problem (timeouts, unreachable targets); 2 bad usage or config; 3 the agent
// could not start (e.g. the listen port is taken).
#pragma once

namespace ghostwatch {

int cli_main(int argc, char** argv);

}  // namespace ghostwatch
