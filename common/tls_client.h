// TLS for the connections ghostwatch makes on its own sockets (Redis and memcached, on the event
// loop and on threads): OpenSSL over a non-blocking descriptor, the server's certificate verified
// against a CA and its name before a byte of the session (AUTH, a key) is sent, and an optional
// client certificate. PostgreSQL and MySQL connections get theirs from libpq and the connector.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

struct ssl_ctx_st;
struct ssl_st;

namespace ghostwatch {

// This thread's OpenSSL error queue as text ("; "-separated), emptying it.
std::string openssl_errors();

// The files of a client's TLS settings (a cache target's `tls:`). ca_file "" uses the system's
// CAs; cert_file and key_file are given together or not at all; server_name "" is the host
// connected to (a name, or an address checked against the certificate's IP entries).
struct TlsClientFiles {
  std::string ca_file, cert_file, key_file, server_name;
  bool operator==(const TlsClientFiles&) const = default;
};

// An OpenSSL client context made from the files' contents as they were read. Errors name the
// file and what is wrong with it (unreadable, not PEM, a key that does not match).
class TlsClientContext {
 public:
  // `digest`: files_digest of the three files, taken by the caller (tls_client_context).
  static Result<std::shared_ptr<const TlsClientContext>> load(const TlsClientFiles& files, std::string digest);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ssl_ctx_st* get() const { return ctx_; }
  // A digest of the files' contents, to tell whether they changed since (rotation).
  const std::string& digest() const { return digest_; }

 private:
  explicit TlsClientContext(ssl_ctx_st* ctx, std::string digest) : ctx_(ctx), digest_(std::move(digest)) {}
  ssl_ctx_st* ctx_;
  std::string digest_;
};

// The context for `files`, shared by every connection that names them: loaded once, and loaded
// again when a file's content has changed, so that a rotated certificate or CA is what the next
// connection uses. Thread-safe.
Result<std::shared_ptr<const TlsClientContext>> tls_client_context(const TlsClientFiles& files);

// A digest of the contents of `paths` (a missing or unreadable file counts as its own content),
// for telling at a reload whether certificates behind an unchanged config changed.
std::string files_digest(const std::vector<std::string>& paths);

// A byte stream over a connected non-blocking socket, plain or TLS. Every call returns at once.
enum class Io { done, want_read, want_write, closed, failed };

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // The TLS handshake, including the certificate's verification (plain: done at once).
  virtual Io handshake() = 0;
  // Sends or receives up to `size` bytes; `moved` is how many.
  virtual Io send(const char* data, std::size_t size, std::size_t& moved) = 0;
  virtual Io receive(char* data, std::size_t size, std::size_t& moved) = 0;
  // Why the last call failed (a verification failure names the reason and the name checked).
  virtual std::string error() const = 0;
  virtual bool tls() const = 0;
};

// Takes no ownership of `fd`. `host` is what the TLS certificate must name unless the files say
// otherwise (server_name).
std::unique_ptr<ByteStream> plain_stream(int fd);
Result<std::unique_ptr<ByteStream>> tls_stream(int fd, std::shared_ptr<const TlsClientContext> context,
                                               const TlsClientFiles& files, const std::string& host);

}  // namespace ghostwatch
