// A shim loaded under the name "libcrypto.so" before civetweb starts TLS (see exporters/tls_compat.h):
// civetweb opens libcrypto by its development name, which exists only where libssl-dev is
// installed. This library holds nothing; it depends on the real libcrypto.so.3.
extern "C" {
__attribute__((visibility("default"))) int ghostwatch_crypto_compat = 1;
}
