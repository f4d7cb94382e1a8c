// HttpServer: the agent's HTTP endpoint (/metrics, the landing page, health, config, reload),
// on civetweb, with optional TLS (civetweb's OpenSSL support, certificate and key loaded from
// separate files as in exporter-toolkit's web config) and a guard that every request passes
// first (basic auth). Routes are exact paths; anything else is 404.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct mg_context;
struct mg_connection;
struct ssl_st;

namespace ghostwatch {

struct HttpRequest {
  std::string method;         // GET, POST, ...
  std::string path;           // without the query
  std::string query;          // after '?', undecoded; empty when none
  std::string authorization;  // the Authorization header, empty when none
  std::string accept_encoding;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct TlsFiles {
  std::string cert_file, key_file;
  bool min_tls13 = false;  // otherwise TLS 1.2 and up
  bool operator==(const TlsFiles&) const = default;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // Returns a response to send instead of routing (e.g. 401), or nullopt to go on.
  using Guard = std::function<std::optional<HttpResponse>(const HttpRequest&)>;

  HttpServer();
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Register before start(). `methods` lists the accepted methods ("GET" also allows HEAD);
  // another method gets 405.
  void route(const std::string& path, std::vector<std::string> methods, Handler handler);
  void set_guard(Guard guard);

  // Listens on host:port (IPv4, or [IPv6]:port). Throws std::runtime_error naming the cause
  // (port in use, unreadable certificate, key not matching the certificate).
  void start(const std::string& listen, const std::optional<TlsFiles>& tls);
  // Re-reads the certificate and key (the same files or others) for the handshakes from now on,
  // without a restart; connections already made keep theirs. On an error (unreadable, not PEM,
  // a key that does not match) the certificate in use stays, and the error says why. Returns
  // whether the certificate changed.
  bool reload_tls(const TlsFiles& files, std::string& error);
  // Stops promptly (civetweb polls its listening socket every 2 s; we wake it).
  void stop();
  // The bound ports (useful with port 0).
  std::vector<int> ports() const;

 private:
  struct Route {
    std::vector<std::string> methods;
    Handler handler;
  };
  struct ServerCertificate;
  static int on_request(mg_connection* conn);
  static int on_init_ssl(void* ssl_ctx, void* user_data);
  static int on_handshake(::ssl_st* ssl, void* self);
  static std::shared_ptr<const ServerCertificate> load_certificate(const TlsFiles& tls, std::string& error);
  static int on_log_message(const mg_connection* conn, const char* message);
  HttpResponse dispatch(const HttpRequest& request) const;

  std::map<std::string, Route> routes_;
  Guard guard_;
  std::optional<TlsFiles> tls_;
  std::string listen_;
  std::string start_error_;  // what civetweb or OpenSSL said while starting
  mutable std::mutex certificate_mu_;
  std::shared_ptr<const ServerCertificate> certificate_;  // what each handshake presents
  mg_context* ctx_ = nullptr;
};

// Writes `response` on a civetweb connection (Content-Length set; HEAD gets no body).
void send_response(mg_connection* conn, const HttpResponse& response, bool head);

}  // namespace ghostwatch
