// Cache targets on the event loop: the same reads as CacheReader (GET/HGET on Redis, get on
// memcached), sent on a non-blocking socket of the reader's own and parsed as the bytes come, so
// that a thousand cache targets cost the loop a socket and a timer each instead of a thread.
// Redis replies are parsed by hiredis' reader; memcached's text protocol is small enough to
// parse here (libmemcached has no non-blocking interface).
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/clock.h"
#include "common/net.h"
#include "common/parse_number.h"
#include "common/redact.h"
#include "common/resolver.h"
#include "common/tls_client.h"
#include "probes/cache/cache_reader.h"

namespace ghostwatch::cache {
namespace {

// What the bytes received so far make of the request's replies.
struct Parsed {
  enum class State { incomplete, complete, broken } state = State::incomplete;
  Fetched fetched = std::optional<std::string>();  // complete: the answer (which may be an error reply)
  std::string error;                               // broken: why the connection cannot go on
};

// One cache's wire protocol for the reader below.
class Protocol {
 public:
  virtual ~Protocol() = default;
  // Sent once on each new connection, before the first request (AUTH, SELECT); its replies come
  // before the request's.
  virtual std::string session_setup() const = 0;
  virtual const std::string& request() const = 0;
  // A new connection: nothing received yet, session_setup()'s replies expected first.
  virtual void restart(bool with_setup) = 0;
  virtual Parsed feed(const char* data, std::size_t size) = 0;
};

class RedisProtocol final : public Protocol {
 public:
  RedisProtocol(const CacheTargetConfig& c, const std::string& key) : config_(c) {
    request_ = c.format == CacheTargetConfig::Format::hash ? command({"HGET", key, c.field}) : command({"GET", key});
  }
  ~RedisProtocol() override { free_reader(); }

  std::string session_setup() const override {
    std::string out;
    if (config_.password) out += command({"AUTH", *config_.password});
    if (config_.db != 0) out += command({"SELECT", std::to_string(config_.db)});
    return out;
  }
  const std::string& request() const override { return request_; }
  void restart(bool with_setup) override {
    if (with_setup || reader_ == nullptr) {  // a new connection; otherwise the last reply was whole
      free_reader();
      reader_ = redisReaderCreate();
    }
    auth_reply_due_ = with_setup && config_.password;
    select_reply_due_ = with_setup && config_.db != 0;
  }
  Parsed feed(const char* data, std::size_t size) override {
    if (reader_ == nullptr || redisReaderFeed(reader_, data, size) != REDIS_OK) return broken("out of memory");
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return broken(std::string("protocol error: ") + reader_->errstr);
      if (raw == nullptr) return Parsed{};
      auto* reply = static_cast<redisReply*>(raw);
      Parsed parsed = auth_reply_due_ || select_reply_due_ ? setup_reply(*reply) : answer(*reply);
      freeReplyObject(reply);
      if (parsed.state != Parsed::State::incomplete) return parsed;
    }
  }

 private:
  // The RESP encoding of a command (what redisCommandArgv would send).
  static std::string command(std::initializer_list<std::string> args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return out;
  }
  static Parsed broken(std::string why) { return Parsed{Parsed::State::broken, std::optional<std::string>(), std::move(why)}; }
  Parsed setup_reply(const redisReply& reply) {
    const bool auth = auth_reply_due_;
    (auth ? auth_reply_due_ : select_reply_due_) = false;
    if (reply.type != REDIS_REPLY_ERROR) return Parsed{};
    return broken(std::string(auth ? "AUTH" : "SELECT") + " failed: " + std::string(reply.str, reply.len));
  }
  static Parsed answer(const redisReply& reply) {
    Parsed p{Parsed::State::complete, std::optional<std::string>(), {}};
    if (reply.type == REDIS_REPLY_STRING) p.fetched = std::optional<std::string>(std::string(reply.str, reply.len));
    else if (reply.type == REDIS_REPLY_ERROR) p.fetched = Error{std::string(reply.str, reply.len)};
    else if (reply.type != REDIS_REPLY_NIL) p.fetched = Error{"unexpected reply type " + std::to_string(reply.type)};
    return p;
  }
  void free_reader() {
    if (reader_) redisReaderFree(reader_);
    reader_ = nullptr;
  }

  CacheTargetConfig config_;
  std::string request_;
  redisReader* reader_ = nullptr;
  bool auth_reply_due_ = false, select_reply_due_ = false;
};

// memcached's text protocol for one key: "VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n" or
// "END\r\n" when the key is absent.
class MemcachedProtocol final : public Protocol {
 public:
  explicit MemcachedProtocol(const std::string& key) : request_("get " + key + "\r\n") {}
  std::string session_setup() const override { return {}; }
  const std::string& request() const override { return request_; }
  void restart(bool) override { in_.clear(); }
  Parsed feed(const char* data, std::size_t size) override {
    in_.append(data, size);
    const std::size_t eol = in_.find("\r\n");
    if (eol == std::string::npos) return in_.size() > kLongestLine ? broken("a reply line without an end") : Parsed{};
    const std::string_view line(in_.data(), eol);
    if (line == "END") return done(std::optional<std::string>());
    if (line.rfind("VALUE ", 0) == 0) return value(line, eol + 2);
    for (const char* error : {"ERROR", "CLIENT_ERROR", "SERVER_ERROR"}) {
      if (line.rfind(error, 0) == 0) return broken(std::string(line));
    }
    return broken("unexpected reply '" + std::string(line.substr(0, 40)) + "'");
  }

 private:
  static constexpr std::size_t kLongestLine = 512;
  static constexpr std::size_t kLargestValue = 1u << 20;  // memcached's default item size limit
  static constexpr std::string_view kTrailer = "\r\nEND\r\n";
  static Parsed broken(std::string why) { return Parsed{Parsed::State::broken, std::optional<std::string>(), std::move(why)}; }
  // The n-th space-separated field of `line`, counted from 0; empty when there are fewer.
  static std::string_view field(std::string_view line, int n) {
    std::size_t at = 0;
    for (; n > 0; --n) {
      at = line.find(' ', at);
      if (at == std::string_view::npos) return {};
      ++at;
    }
    return line.substr(at, line.find(' ', at) - at);
  }
  Parsed done(Fetched fetched) {
    in_.clear();
    return Parsed{Parsed::State::complete, std::move(fetched), {}};
  }
  // "VALUE <key> <flags> <bytes> [<cas>]": the data and "END" follow the header line.
  // Parsed again as each piece of the block arrives, so it allocates nothing.
  Parsed value(std::string_view header, std::size_t data_at) {
    const auto bytes = parse_number<std::size_t>(field(header, 3));
    if (!bytes || *bytes > kLargestValue) return broken("bad VALUE line '" + std::string(header.substr(0, 40)) + "'");
    const std::size_t end = data_at + *bytes;
    if (in_.size() < end + kTrailer.size()) return Parsed{};
    if (in_.compare(end, kTrailer.size(), kTrailer) != 0) return broken("a VALUE block without its END");
    return done(std::optional<std::string>(in_.substr(data_at, *bytes)));
  }

  std::string request_;
  std::string in_;
};

// The reader: connect (by address, non-blocking), send, read until the protocol has its answer.
class AsyncCacheReader final : public AsyncCanaryReader {
 public:
  AsyncCacheReader(const CacheTargetConfig& c, std::string key, Duration connect_timeout, Duration timeout,
                   std::unique_ptr<Protocol> protocol)
      : config_(c), key_(std::move(key)), connect_timeout_(connect_timeout), timeout_(timeout),
        protocol_(std::move(protocol)),
        label_(std::string(c.kind == CacheTargetConfig::Kind::redis ? "redis " : "memcached ") + c.host + ":" +
               std::to_string(c.port)) {}
  ~AsyncCacheReader() override { close_socket(); }

  PollStep begin() override {
    if (fd_ >= 0) return send_request(/*with_setup=*/false);
    deadline_ = steady_now() + connect_timeout_;
    if (is_ip_literal(config_.host)) {
      addresses_ = {config_.host};
      next_address_ = 0;
      return connect_next(label_ + ": no address");
    }
    auto step = start_lookup(lookup_, {config_.host}, deadline_);
    return step ? step.value() : finish(Error{label_ + ": " + step.error().message});
  }

  PollStep advance() override {
    if (lookup_) return looked_up();
    if (fd_ < 0) return finish(Error{label_ + ": connection is closed"});
    if (connecting_) {
      int error = 0;
      socklen_t len = sizeof error;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
      if (error != 0) {
        close_socket();
        return connect_next(label_ + ": " + std::strerror(error));  // the host's next address, if any
      }
      connecting_ = false;
      return start_session();
    }
    if (handshaking_) return handshake();
    if (!flush()) return drop(stream_->error());
    return receive();
  }

  Error expire() override {
    const char* what = lookup_ ? "name lookup" : connecting_ ? "connect" : handshaking_ ? "TLS handshake" : "query";
    const Duration limit = lookup_ || connecting_ || handshaking_ ? connect_timeout_ : timeout_;
    lookup_.reset();
    close_socket();
    return Error{label_ + ": " + timed_out(what, limit)};
  }
  bool connected() const override { return fd_ >= 0 && !connecting_ && !handshaking_; }
  int socket() const override { return fd_; }
  // Nothing is expected between polls: a close, an error or stray bytes end the connection.
  // Over TLS a record that carries no data (a session ticket) is read and the connection kept.
  void drain() override {
    if (fd_ < 0 || !stream_) return;
    char byte;
    std::size_t got = 0;
    if (stream_->receive(&byte, 1, got) == Io::want_read) return;
    close_socket();
  }

 private:
  PollStep looked_up() {
    if (auto waiting = lookup_pending(*lookup_, deadline_)) return *waiting;
    const std::shared_ptr<NameLookup> lookup = std::move(lookup_);
    if (!lookup->addresses()) return finish(Error{label_ + ": " + lookup->addresses().error().message});
    addresses_ = lookup->addresses().value().front();
    next_address_ = 0;
    return connect_next(label_ + ": no address");
  }
  // Connects to the next address of the host, or fails with `last_error` when none is left.
  PollStep connect_next(const std::string& last_error) {
    std::string error = last_error;
    while (next_address_ < addresses_.size()) {
      Status s = open_socket(addresses_[next_address_++]);
      if (s) {
        connecting_ = true;
        return PollStep{std::nullopt, fd_, false, true, deadline_};
      }
      error = s.error().message;
    }
    return finish(Error{error});
  }
  Status open_socket(const std::string& address) {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    if (!socket_address(address, addr, addr_len)) return Error{label_ + ": " + address + " is not an IP address"};
    fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return Error{label_ + ": socket: " + std::strerror(errno)};
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 && errno != EINPROGRESS) {
      const int error = errno;
      close_socket();
      return Error{label_ + ": " + std::strerror(error)};
    }
    return ok_status();
  }
  bool socket_address(const std::string& address, sockaddr_storage& addr, socklen_t& len) const {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(config_.port));
      len = sizeof *v4;
      return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(config_.port));
      len = sizeof *v6;
      return true;
    }
    return false;
  }

  // A connected socket: plain, or TLS whose handshake (and the certificate's verification) comes
  // before a byte of the session; the context is the files' as they are now (rotation).
  PollStep start_session() {
    if (!config_.tls) {
      stream_ = plain_stream(fd_);
      return send_request(/*with_setup=*/true);
    }
    auto context = tls_client_context(*config_.tls);
    if (!context) return drop(context.error().message);
    auto stream = tls_stream(fd_, context.value(), *config_.tls, config_.host);
    if (!stream) return drop(stream.error().message);
    stream_ = std::move(stream.value());
    handshaking_ = true;
    return handshake();
  }
  PollStep handshake() {
    const Io io = stream_->handshake();
    if (io == Io::done) {
      handshaking_ = false;
      return send_request(/*with_setup=*/true);
    }
    if (io == Io::want_read || io == Io::want_write) return PollStep{std::nullopt, fd_, io == Io::want_read, io == Io::want_write, deadline_};
    return drop(stream_->error());
  }
  PollStep send_request(bool with_setup) {
    protocol_->restart(with_setup);
    out_ = with_setup ? protocol_->session_setup() + protocol_->request() : protocol_->request();
    sent_ = 0;
    deadline_ = steady_now() + timeout_;
    if (!flush()) return drop(stream_->error());
    return waiting();
  }
  // Sends what is left of out_; false on a socket error.
  bool flush() {
    while (sent_ < out_.size()) {
      std::size_t n = 0;
      const Io io = stream_->send(out_.data() + sent_, out_.size() - sent_, n);
      sent_ += n;
      if (io == Io::want_write || io == Io::want_read) return true;
      if (io != Io::done) return false;
    }
    return true;
  }
  PollStep receive() {
    char buffer[4096];
    for (;;) {
      std::size_t n = 0;
      const Io io = stream_->receive(buffer, sizeof buffer, n);
      if (io == Io::closed) return drop("connection closed by the server");
      if (io == Io::want_read || io == Io::want_write) return waiting();
      if (io == Io::failed) return drop(stream_->error());
      Parsed parsed = protocol_->feed(buffer, n);
      if (parsed.state == Parsed::State::broken) return drop(parsed.error);
      if (parsed.state == Parsed::State::complete) {
        if (!parsed.fetched) return finish(Error{label_ + ": " + parsed.fetched.error().message});
        return finish(canary_poll_of(parsed.fetched, config_, key_));
      }
    }
  }
  PollStep waiting() const { return PollStep{std::nullopt, fd_, true, sent_ < out_.size(), deadline_}; }
  PollStep drop(const std::string& why) {
    close_socket();
    return finish(Error{scrub(label_ + ": " + why)});
  }
  static PollStep finish(Result<CanaryPoll> result) { return PollStep{std::move(result)}; }
  void close_socket() {
    stream_.reset();  // before its descriptor
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    connecting_ = false;
    handshaking_ = false;
    out_.clear();
    sent_ = 0;
  }

  CacheTargetConfig config_;
  std::string key_;
  Duration connect_timeout_, timeout_;
  std::unique_ptr<Protocol> protocol_;
  std::string label_;
  std::shared_ptr<NameLookup> lookup_;  // while the host's name is looked up
  std::vector<std::string> addresses_;  // the host's, tried in turn until one connects
  std::size_t next_address_ = 0;
  int fd_ = -1;
  bool connecting_ = false;
  bool handshaking_ = false;
  std::unique_ptr<ByteStream> stream_;  // over fd_ once connected
  std::string out_;
  std::size_t sent_ = 0;
  MonoTime deadline_{};
};

// memcached's text protocol takes a key up to the first space or control character.
bool valid_memcached_key(const std::string& key) {
  if (key.empty() || key.size() > 250) return false;
  for (unsigned char c : key) {
    if (c <= ' ' || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<AsyncCanaryReader> make_async_cache_reader(const CacheTargetConfig& cache, const std::string& agent_id,
                                                           const ProbeConfig& probe) {
  const std::string key = expand_key(cache.key, agent_id, probe.name);
  std::unique_ptr<Protocol> protocol;
  if (cache.kind == CacheTargetConfig::Kind::redis) {
    protocol = std::make_unique<RedisProtocol>(cache, key);
  } else {
    if (!valid_memcached_key(key)) return nullptr;  // libmemcached says why, on a thread
    protocol = std::make_unique<MemcachedProtocol>(key);
  }
  return std::make_unique<AsyncCacheReader>(cache, key, probe.connect_timeout, probe.query_timeout, std::move(protocol));
}

}  // namespace ghostwatch::cache
