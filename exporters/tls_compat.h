// Makes civetweb's TLS work on Debian 12. civetweb loads OpenSSL at run time with
// dlopen("libssl.so") and dlopen("libcrypto.so"): development names, present only with libssl-dev.
// And it was built for the OpenSSL 1.1 API, so it calls SSL_get_peer_certificate on every TLS
// connection, which OpenSSL 3 no longer exports: a crash on the first HTTPS request. ghostwatch
// ships two small shims whose sonames are exactly those names; once loaded here by path, the
// dynamic loader hands them to civetweb's dlopen, and every OpenSSL symbol resolves through them
// to the real libssl.so.3 and libcrypto.so.3.
#pragma once

#include <string>

namespace ghostwatch {

// Loads the shims from <dir of the executable>/tls-compat (the build tree) or
// <dir of the executable>/../lib/ghostwatch (an installed package). Throws std::runtime_error
// naming the places tried when they are missing. Idempotent.
void load_tls_compat();

}  // namespace ghostwatch
