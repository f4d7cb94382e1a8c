// Keeping secrets out of logs, errors, metric labels and reports.
//
// Two layers: redact_dsn() masks the password in a connection string the agent prints on
// purpose (check-config, reports); scrub() replaces every registered secret value in any text
// (a driver's error message may quote parts of a DSN). Config loading registers each password
// it finds; the logger and every error path call scrub().
#pragma once

#include <string>
#include <string_view>

namespace ghostwatch {

inline constexpr std::string_view kRedacted = "***";

// Masks password values in a libpq key=value string ("password=x" / "password='x y'"), in a
// URI ("scheme://user:pass@host/db?password=x"), leaving everything else as written.
std::string redact_dsn(std::string_view dsn);

// Remembers a secret value for scrub(). Values shorter than 3 characters are ignored: masking
// them would mangle ordinary text and they offer no protection anyway.
void register_secret(std::string_view secret);

// Forgets every registered secret (tests and fuzzing, which parse many configs in one process).
void forget_secrets();

// Replaces every registered secret in `text` with ***; the result holds none of them. Bytes that
// are not printable text (control characters, invalid UTF-8: libpq quotes OpenSSL's reason for
// an unreadable key file as raw memory) become '?' first, so that an error can always be logged
// and put in a JSON report.
std::string scrub(std::string_view text);
std::string printable(std::string_view text);

// Extracts the password from a DSN, if any (for registration); empty when there is none.
std::string dsn_password(std::string_view dsn);

}  // namespace ghostwatch
