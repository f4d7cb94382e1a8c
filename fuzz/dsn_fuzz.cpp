// PostgreSQL DSNs (key=value and postgresql:// URIs) and mysql:// URIs: the redactor and the
// password extractor agree (a password the extractor finds is masked), and the URI parser
// never crashes.
#include <vector>

#include "common/redact.h"
#include "fuzz/fuzz_input.h"
#include "probes/mysql/mysql_uri.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace ghostwatch;
  const std::string_view dsn = fuzz::text(data, size);
  const std::string redacted = redact_dsn(dsn);
  const std::string password = dsn_password(dsn);
  // The password field, where it is written literally (key=value, quoted or not, or a URI's
  // user info) and only once, is masked. Escaped passwords are not literal, and the same text
  // inside another value is not the field (scrub() masks registered secrets anywhere).
  if (password.size() >= 8 && password.find('*') == std::string::npos) {
    // A URI starts with its scheme; anything else is key=value (as the redactor decides).
    const std::size_t sep = dsn.find("://");
    const bool uri = sep != std::string_view::npos && sep > 0 &&
                     dsn.substr(0, sep).find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.") ==
                         std::string_view::npos;
    const std::vector<std::string> fields =
        uri ? std::vector<std::string>{":" + password + "@"}
            : std::vector<std::string>{"password=" + password + " ", "password='" + password + "'"};
    for (const std::string& field : fields) {
      if (dsn.find(field) != std::string_view::npos && dsn.find(field) == dsn.rfind(field)) {
        FUZZ_CHECK(redacted.find(field) == std::string::npos);
      }
    }
  }
  (void)mysql::parse_uri(dsn);
  return 0;
}
