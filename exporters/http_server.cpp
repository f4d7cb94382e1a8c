#include "exporters/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include <civetweb.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "common/tls_client.h"
#include "exporters/http_compression.h"
#include "exporters/tls_compat.h"

namespace ghostwatch {
namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
  }
  return "Status";
}

// civetweb's "listening_ports" syntax: host:port, with an 's' for TLS.
std::string civet_port(const std::string& listen, bool tls) { return listen + (tls ? "s" : ""); }

// Opens and closes one TCP connection to host:port without blocking.
void poke(const in_addr& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr = host;
  (void)connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  close(fd);
}

// Below this a body goes as it is: gzip's header and trailer alone are 18 bytes, and a small
// answer is no cheaper to send compressed.
constexpr std::size_t kCompressFrom = 1024;

void compress_if_accepted(HttpResponse& response, const std::string& accept_encoding) {
  if (response.body.size() < kCompressFrom) return;
  response.headers.emplace_back("Vary", "Accept-Encoding");
  if (!accepts_gzip(accept_encoding)) return;
  response.body = gzip_body(response.body);
  response.headers.emplace_back("Content-Encoding", "gzip");
}

}  // namespace

void send_response(mg_connection* conn, const HttpResponse& r, bool head) {
  std::string header = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  header += "Content-Type: " + r.content_type + "\r\n";
  header += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  header += "Cache-Control: no-store\r\n";
  header += "X-Content-Type-Options: nosniff\r\n";
  for (const auto& [name, value] : r.headers) header += name + ": " + value + "\r\n";
  header += "\r\n";
  mg_write(conn, header.data(), header.size());
  if (!head && !r.body.empty()) mg_write(conn, r.body.data(), r.body.size());
}

HttpServer::HttpServer() = default;

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(const std::string& path, std::vector<std::string> methods, Handler handler) {
  routes_[path] = Route{std::move(methods), std::move(handler)};
}

void HttpServer::set_guard(Guard guard) { guard_ = std::move(guard); }

HttpResponse HttpServer::dispatch(const HttpRequest& request) const {
  if (guard_) {
    if (auto refused = guard_(request)) return *refused;
  }
  auto it = routes_.find(request.path);
  if (it == routes_.end()) return {404, "text/plain; charset=utf-8", "not found: see / for what this agent serves\n", {}};
  const auto& methods = it->second.methods;
  const bool head_ok = request.method == "HEAD" && std::find(methods.begin(), methods.end(), "GET") != methods.end();
  if (!head_ok && std::find(methods.begin(), methods.end(), request.method) == methods.end()) {
    std::string allow;
    for (const auto& m : methods) allow += (allow.empty() ? "" : ", ") + m;
    return {405, "text/plain; charset=utf-8", "method not allowed; use " + allow + "\n", {{"Allow", allow}}};
  }
  try {
    return it->second.handler(request);
  } catch (const std::exception& e) {
    log::error(std::string("HTTP handler failed: ") + e.what(), {{"path", request.path}});
    return {500, "text/plain; charset=utf-8", "internal error\n", {}};
  }
}

int HttpServer::on_request(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  auto* self = static_cast<HttpServer*>(info->user_data);
  HttpRequest request;
  request.method = info->request_method ? info->request_method : "";
  request.path = info->local_uri ? info->local_uri : "/";
  request.query = info->query_string ? info->query_string : "";
  if (const char* a = mg_get_header(conn, "Authorization")) request.authorization = a;
  if (const char* e = mg_get_header(conn, "Accept-Encoding")) request.accept_encoding = e;
  HttpResponse response = self->dispatch(request);
  compress_if_accepted(response, request.accept_encoding);
  send_response(conn, response, request.method == "HEAD");
  return response.status;
}

// The certificate (with its chain) and key each handshake presents, read from the web config's
// two files (civetweb's own loading takes one PEM holding both). Handshakes take the current one
// (on_handshake), so that a reload can replace it while the server runs.
struct HttpServer::ServerCertificate {
  X509* leaf = nullptr;
  STACK_OF(X509)* chain = nullptr;
  EVP_PKEY* key = nullptr;
  std::string digest;  // of the two files' contents
  ~ServerCertificate() {
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

std::shared_ptr<const HttpServer::ServerCertificate> HttpServer::load_certificate(const TlsFiles& tls,
                                                                                  std::string& error) {
  auto c = std::make_shared<ServerCertificate>();
  ERR_clear_error();
  auto read = [](const std::string& path) -> std::unique_ptr<BIO, decltype(&BIO_free)> {
    return {BIO_new_file(path.c_str(), "r"), &BIO_free};
  };
  auto certs = read(tls.cert_file);
  c->leaf = certs ? PEM_read_bio_X509_AUX(certs.get(), nullptr, nullptr, nullptr) : nullptr;
  if (c->leaf == nullptr) {
    error = "cannot load the TLS certificate '" + tls.cert_file + "': " + openssl_errors();
    return nullptr;
  }
  c->chain = sk_X509_new_null();
  while (X509* next = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) sk_X509_push(c->chain, next);
  ERR_clear_error();  // the end of the chain reads as an error
  auto key = read(tls.key_file);
  c->key = key ? PEM_read_bio_PrivateKey(key.get(), nullptr, nullptr, nullptr) : nullptr;
  if (c->key == nullptr) {
    error = "cannot load the TLS key '" + tls.key_file + "': " + openssl_errors();
    return nullptr;
  }
  if (X509_check_private_key(c->leaf, c->key) != 1) {
    ERR_clear_error();
    error = "the TLS key '" + tls.key_file + "' does not match the certificate '" + tls.cert_file + "'";
    return nullptr;
  }
  c->digest = files_digest({tls.cert_file, tls.key_file});
  return c;
}

int HttpServer::on_init_ssl(void* ssl_ctx, void* user_data) {
  auto* self = static_cast<HttpServer*>(user_data);
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  auto certificate = load_certificate(*self->tls_, self->start_error_);
  if (!certificate) return -1;
  {
    std::lock_guard lock(self->certificate_mu_);
    self->certificate_ = std::move(certificate);
  }
  SSL_CTX_set_cert_cb(ctx, &HttpServer::on_handshake, self);
  SSL_CTX_set_min_proto_version(ctx, self->tls_->min_tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
  return 1;
}

int HttpServer::on_handshake(SSL* ssl, void* user_data) {
  auto* self = static_cast<HttpServer*>(user_data);
  std::shared_ptr<const ServerCertificate> c;
  {
    std::lock_guard lock(self->certificate_mu_);
    c = self->certificate_;
  }
  if (!c) return 0;
  return SSL_use_cert_and_key(ssl, c->leaf, c->key, c->chain, /*override=*/1) == 1 ? 1 : 0;
}

bool HttpServer::reload_tls(const TlsFiles& files, std::string& error) {
  if (!tls_) {
    error = "the server was started without TLS";
    return false;
  }
  auto certificate = load_certificate(files, error);
  if (!certificate) return false;
  std::lock_guard lock(certificate_mu_);
  const bool changed = !certificate_ || certificate_->digest != certificate->digest;
  certificate_ = std::move(certificate);
  tls_->cert_file = files.cert_file;
  tls_->key_file = files.key_file;
  return changed;
}

int HttpServer::on_log_message(const mg_connection* conn, const char* message) {
  const mg_context* ctx = conn ? mg_get_context(conn) : nullptr;
  auto* self = ctx ? static_cast<HttpServer*>(mg_get_user_data(ctx)) : nullptr;
  if (self && self->ctx_ == nullptr && self->start_error_.empty()) self->start_error_ = message;
  else log::debug(std::string("HTTP: ") + message);
  return 1;
}

void HttpServer::start(const std::string& listen, const std::optional<TlsFiles>& tls) {
  if (tls) load_tls_compat();  // before civetweb loads OpenSSL
  static const unsigned features = mg_init_library(tls ? MG_FEATURES_TLS : 0);  // once per process
  (void)features;
  tls_ = tls;
  listen_ = listen;
  start_error_.clear();
  const std::string ports = civet_port(listen, tls.has_value());
  // Bounded waits, so that a slow or stuck client cannot hold a worker thread for long.
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "4", "request_timeout_ms", "10000",
                           "enable_keep_alive", "yes", "keep_alive_timeout_ms", "5000", nullptr};
  mg_callbacks callbacks{};
  callbacks.begin_request = &HttpServer::on_request;
  callbacks.log_message = &HttpServer::on_log_message;
  if (tls) callbacks.init_ssl = &HttpServer::on_init_ssl;
  ctx_ = mg_start(&callbacks, this, options);
  if (ctx_ == nullptr) {
    std::string why = start_error_.empty() ? "civetweb could not start (is the address valid and the port free?)"
                                           : start_error_;
    if (tls && why.find("libssl") != std::string::npos) why += " (TLS needs OpenSSL's libssl.so at run time)";
    throw std::runtime_error(why);
  }
}

std::vector<int> HttpServer::ports() const {
  std::vector<int> out;
  if (!ctx_) return out;
  mg_server_port p[4];
  const int n = mg_get_server_ports(ctx_, 4, p);
  for (int i = 0; i < n; ++i) out.push_back(p[i].port);
  return out;
}

void HttpServer::stop() {
  if (!ctx_) return;
  const std::vector<int> bound = ports();
  // The configured IPv4 address, or loopback for a wildcard, a name or IPv6.
  in_addr host{htonl(INADDR_LOOPBACK)};
  const std::string h = listen_.substr(0, listen_.rfind(':'));
  if (inet_pton(AF_INET, h.c_str(), &host) != 1 || host.s_addr == htonl(INADDR_ANY)) host.s_addr = htonl(INADDR_LOOPBACK);
  std::atomic<bool> stopped{false};
  std::jthread waker([&] {
    while (!stopped) {
      for (int port : bound) poke(host, port);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  mg_stop(ctx_);
  ctx_ = nullptr;
  stopped = true;
}

}  // namespace ghostwatch
