#include "common/tls_client.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "common/net.h"
#include "common/small_file.h"

namespace ghostwatch {
namespace {

constexpr std::size_t kLargestPem = 1 << 20;

// The error names the file and the reason: a key the service user may not read is the common one.
Result<std::string> read_pem(const std::string& path, const char* what) {
  if (::access(path.c_str(), R_OK) != 0) {
    return Error{"tls." + std::string(what) + ": cannot read '" + path + "': " + std::strerror(errno)};
  }
  auto text = read_small_file(path, kLargestPem);
  if (!text) return Error{"tls." + std::string(what) + ": " + text.error().message};
  return text;
}

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
Bio memory_bio(const std::string& text) { return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free); }

Status add_cas(SSL_CTX* ctx, const std::string& path) {
  auto text = read_pem(path, "ca_file");
  if (!text) return text.error();
  Bio bio = memory_bio(text.value());
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, nullptr, nullptr);
  int added = 0;
  for (int i = 0; infos != nullptr && i < sk_X509_INFO_num(infos); ++i) {
    X509_INFO* info = sk_X509_INFO_value(infos, i);
    if (info->x509 && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), info->x509) == 1) ++added;
  }
  sk_X509_INFO_pop_free(infos, X509_INFO_free);
  ERR_clear_error();
  if (added == 0) return Error{"tls.ca_file: '" + path + "' holds no PEM certificate"};
  return ok_status();
}

Status use_client_certificate(SSL_CTX* ctx, const TlsClientFiles& f) {
  auto cert_text = read_pem(f.cert_file, "cert_file");
  if (!cert_text) return cert_text.error();
  auto key_text = read_pem(f.key_file, "key_file");
  if (!key_text) return key_text.error();
  Bio certs = memory_bio(cert_text.value());
  X509* leaf = PEM_read_bio_X509_AUX(certs.get(), nullptr, nullptr, nullptr);
  if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    return Error{"tls.cert_file: '" + f.cert_file + "' holds no usable PEM certificate: " + openssl_errors()};
  }
  X509_free(leaf);
  while (X509* chain = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, chain) != 1) X509_free(chain);
  }
  ERR_clear_error();  // the end of the chain reads as an error
  Bio key_bio = memory_bio(key_text.value());
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  const bool used = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  if (!used) {
    const std::string why = openssl_errors();
    if (why.find("values mismatch") != std::string::npos) {
      return Error{"tls.key_file: '" + f.key_file + "' does not match the certificate '" + f.cert_file + "'"};
    }
    return Error{"tls.key_file: '" + f.key_file + "' holds no usable PEM private key (an encrypted key is not supported): " + why};
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return Error{"tls.key_file: '" + f.key_file + "' does not match the certificate '" + f.cert_file + "'"};
  }
  return ok_status();
}

// A socket BIO that never raises SIGPIPE (a server that closed must not kill the agent).
int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::send(static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))), data,
                           static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}
int bio_read(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::recv(static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))), data,
                           static_cast<std::size_t>(size), 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}
long bio_ctrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }
int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ghostwatch socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();
  return method;
}

class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(int fd) : fd_(fd) {}
  Io handshake() override { return Io::done; }
  Io send(const char* data, std::size_t size, std::size_t& moved) override {
    moved = 0;
    const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
    if (n >= 0) moved = static_cast<std::size_t>(n);
    return outcome(n, Io::want_write);
  }
  Io receive(char* data, std::size_t size, std::size_t& moved) override {
    moved = 0;
    const ssize_t n = ::recv(fd_, data, size, 0);
    if (n == 0) return Io::closed;
    if (n > 0) moved = static_cast<std::size_t>(n);
    return outcome(n, Io::want_read);
  }
  std::string error() const override { return std::strerror(errno_); }
  bool tls() const override { return false; }

 private:
  Io outcome(ssize_t n, Io would_block) {
    if (n >= 0) return Io::done;
    if (errno == EAGAIN || errno == EINTR) return would_block;
    errno_ = errno;
    return Io::failed;
  }
  int fd_;
  int errno_ = 0;
};

class TlsStream final : public ByteStream {
 public:
  TlsStream(SSL* ssl, std::shared_ptr<const TlsClientContext> context, std::string name)
      : ssl_(ssl), context_(std::move(context)), name_(std::move(name)) {}
  ~TlsStream() override { SSL_free(ssl_); }

  Io handshake() override {
    ERR_clear_error();
    const int rc = SSL_connect(ssl_);
    if (rc == 1) return Io::done;
    const Io io = outcome(rc);
    if (io == Io::failed || io == Io::closed) explain_handshake_failure();
    return io == Io::closed ? Io::failed : io;
  }
  Io send(const char* data, std::size_t size, std::size_t& moved) override {
    ERR_clear_error();
    moved = 0;
    return SSL_write_ex(ssl_, data, size, &moved) == 1 ? Io::done : outcome(0);
  }
  Io receive(char* data, std::size_t size, std::size_t& moved) override {
    ERR_clear_error();
    moved = 0;
    return SSL_read_ex(ssl_, data, size, &moved) == 1 ? Io::done : outcome(0);
  }
  std::string error() const override { return error_; }
  bool tls() const override { return true; }

 private:
  Io outcome(int rc) {
    const int saved_errno = errno;
    switch (SSL_get_error(ssl_, rc)) {
      case SSL_ERROR_WANT_READ: return Io::want_read;
      case SSL_ERROR_WANT_WRITE: return Io::want_write;
      case SSL_ERROR_ZERO_RETURN: return Io::closed;
      case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && saved_errno == 0) return Io::closed;  // EOF without close_notify
        error_ = saved_errno ? std::strerror(saved_errno) : "TLS: " + openssl_errors();
        return Io::failed;
      default:
        error_ = "TLS: " + explained(openssl_errors());
        return Io::failed;
    }
  }
  // The server's alerts about our certificate, in words that say what to change.
  static std::string explained(const std::string& error) {
    if (error.find("alert certificate required") != std::string::npos) {
      return error + " (the server requires a client certificate: set tls.cert_file and tls.key_file)";
    }
    if (error.find("alert unknown ca") != std::string::npos || error.find("alert bad certificate") != std::string::npos) {
      return error + " (the server does not accept the client certificate)";
    }
    if (error.find("alert certificate expired") != std::string::npos) {
      return error + " (the server says the client certificate has expired)";
    }
    return error;
  }
  void explain_handshake_failure() {
    const long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      error_ = "TLS certificate verify failed: " + std::string(X509_verify_cert_error_string(verify)) +
               " (server name checked: '" + name_ + "')";
    } else if (error_.empty() || error_ == "TLS: no detail from OpenSSL") {
      error_ = "TLS handshake failed: the server closed the connection";
    } else {
      error_ = "TLS handshake failed: " + error_;
    }
  }

  SSL* ssl_;
  std::shared_ptr<const TlsClientContext> context_;  // outlives ssl_'s use of it
  std::string name_;
  std::string error_;
};

}  // namespace

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

std::string files_digest(const std::vector<std::string>& paths) {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  for (const std::string& path : paths) {
    auto text = read_small_file(path, kLargestPem);
    const std::string part = path + '\0' + (text ? "=" + text.value() : "!" + text.error().message) + '\0';
    EVP_DigestUpdate(md, part.data(), part.size());
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  EVP_DigestFinal_ex(md, out, &size);
  EVP_MD_CTX_free(md);
  static const char* hex = "0123456789abcdef";
  std::string text;
  for (unsigned i = 0; i < size; ++i) text += {hex[out[i] >> 4], hex[out[i] & 15]};
  return text;
}

Result<std::shared_ptr<const TlsClientContext>> TlsClientContext::load(const TlsClientFiles& f, std::string digest) {
  if (f.cert_file.empty() != f.key_file.empty()) return Error{"tls: cert_file and key_file go together"};
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Error{"tls: cannot create an OpenSSL context: " + openssl_errors()};
  std::shared_ptr<const TlsClientContext> out(new TlsClientContext(ctx, std::move(digest)));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  Status loaded = f.ca_file.empty() ? (SSL_CTX_set_default_verify_paths(ctx) == 1
                                           ? ok_status()
                                           : Status(Error{"tls: cannot load the system's CA certificates"}))
                                    : add_cas(ctx, f.ca_file);
  if (loaded && !f.cert_file.empty()) loaded = use_client_certificate(ctx, f);
  if (!loaded) return loaded.error();
  return out;
}

Result<std::shared_ptr<const TlsClientContext>> tls_client_context(const TlsClientFiles& files) {
  static std::mutex mu;
  static std::map<std::vector<std::string>, std::shared_ptr<const TlsClientContext>> loaded;
  const std::vector<std::string> key{files.ca_file, files.cert_file, files.key_file};
  const std::string digest = files_digest(key);
  std::lock_guard lock(mu);
  auto it = loaded.find(key);
  if (it != loaded.end() && it->second->digest() == digest) return it->second;
  auto context = TlsClientContext::load(files, digest);
  if (!context) return context.error();
  loaded[key] = context.value();
  return context;
}

std::unique_ptr<ByteStream> plain_stream(int fd) { return std::make_unique<PlainStream>(fd); }

Result<std::unique_ptr<ByteStream>> tls_stream(int fd, std::shared_ptr<const TlsClientContext> context,
                                               const TlsClientFiles& files, const std::string& host) {
  SSL* ssl = SSL_new(context->get());
  BIO* bio = ssl ? BIO_new(socket_method()) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl);
    return Error{"TLS: cannot create a session: " + openssl_errors()};
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  SSL_set_bio(ssl, bio, bio);
  SSL_set_connect_state(ssl);
  const std::string name = files.server_name.empty() ? host : files.server_name;
  const bool address = is_ip_literal(name);
  const bool named = address ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1
                             : SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 && SSL_set1_host(ssl, name.c_str()) == 1;
  if (!named) {
    SSL_free(ssl);
    return Error{"TLS: cannot check the server name '" + name + "': " + openssl_errors()};
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return std::unique_ptr<ByteStream>(std::make_unique<TlsStream>(ssl, std::move(context), name));
}

}  // namespace ghostwatch
