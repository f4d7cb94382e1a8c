// A shim loaded under the name "libssl.so" before civetweb starts TLS (see exporters/tls_compat.h).
// Debian 12's civetweb 1.15 is built for the OpenSSL 1.1 API and calls SSL_get_peer_certificate
// on every TLS connection; OpenSSL 3 exports that function only as SSL_get1_peer_certificate (the
// old name is a macro), so without this shim the call goes to address 0. Everything else civetweb
// looks up here resolves in the real libssl.so.3, which this shim depends on.
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

extern "C" {
__attribute__((visibility("default"))) X509* SSL_get_peer_certificate(const SSL* ssl);
// Same contract in 1.1 and 3: the caller owns a reference and frees it with X509_free.
X509* SSL_get_peer_certificate(const SSL* ssl) { return SSL_get1_peer_certificate(ssl); }
}
