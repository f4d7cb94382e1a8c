// HTTP read-path responses: the seq by JSON pointer or by regular expression, or an error.
#include "fuzz/fuzz_input.h"
#include "probes/read_paths.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  const std::string body(fuzz::text(data, size));
  ReadPathConfig pointer;
  pointer.seq_pointer = "/canary/seq";
  (void)extract_seq(body, pointer);
  ReadPathConfig regex;
  regex.seq_regex = R"("seq"\s*:\s*([0-9]+))";
  (void)extract_seq(body, regex);
  return 0;
}
