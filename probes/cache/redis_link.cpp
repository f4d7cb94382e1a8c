#include "probes/cache/redis_link.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/redact.h"

namespace ghostwatch::cache {

std::string redis_command(const std::vector<std::string_view>& argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (std::string_view a : argv) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out.append(a);
    out += "\r\n";
  }
  return out;
}

Error redis_error(const CacheTargetConfig& cache, const char* what, const std::string& why) {
  std::string message = "redis " + cache.host + ":" + std::to_string(cache.port) + ": ";
  if (what) message += std::string(what) + " failed" + (why.empty() ? std::string() : ": " + why);
  else message += why.empty() ? std::string("error") : why;
  return Error{scrub(message)};
}

RedisLink::RedisLink(const CacheTargetConfig& cache, Duration connect_timeout, Duration query_timeout)
    : cache_(cache), connect_timeout_(connect_timeout), query_timeout_(query_timeout) {}

RedisLink::~RedisLink() { close(); }

void RedisLink::set_reply_functions(redisReplyObjectFunctions* functions, void* privdata) {
  functions_ = functions;
  privdata_ = privdata;
}

void RedisLink::close() {
  stream_.reset();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (reader_) redisReaderFree(reader_);
  reader_ = nullptr;
  out_.clear();
}

Error RedisLink::failure(const char* what, const std::string& why) {
  Error e = redis_error(cache_, what, why);
  close();
  return e;
}

void RedisLink::new_reader(bool with_functions) {
  if (reader_) redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  if (with_functions && functions_ && reader_) {
    reader_->fn = functions_;
    reader_->privdata = privdata_;
  }
}

Status RedisLink::wait(bool read, bool write, MonoTime deadline, const char* what, Duration limit) {
  while (true) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= Duration(0)) return failure(what, timed_out("waiting", limit));
    pollfd p{fd_, static_cast<short>((read ? POLLIN : 0) | (write ? POLLOUT : 0)), 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count()));
    if (rc > 0) return ok_status();
    if (rc < 0 && errno != EINTR) return failure(what, std::strerror(errno));
  }
}

// Connects to the host's addresses in turn; the error is the last one's.
Status RedisLink::open_socket(MonoTime deadline) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(cache_.port);
  if (const int rc = getaddrinfo(cache_.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return failure(nullptr, std::string("cannot resolve: ") + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> addresses(found, &freeaddrinfo);
  std::string last = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd_ = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return failure(nullptr, std::string("socket: ") + std::strerror(errno));
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int error = 0;
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) != 0) error = errno;
    if (error == EINPROGRESS) {
      if (Status s = wait(false, true, deadline, "connect", connect_timeout_); !s) return s;
      socklen_t len = sizeof error;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len) != 0) error = errno;
    }
    if (error == 0) return ok_status();
    last = std::strerror(error);
    ::close(fd_);
    fd_ = -1;
  }
  return failure(nullptr, last);
}

Status RedisLink::connect() {
  if (fd_ >= 0) return ok_status();
  const MonoTime deadline = std::chrono::steady_clock::now() + connect_timeout_;
  if (Status s = open_socket(deadline); !s) return s;
  if (!cache_.tls) {
    stream_ = plain_stream(fd_);
  } else {
    auto context = tls_client_context(*cache_.tls);
    if (!context) return failure(nullptr, context.error().message);
    auto stream = tls_stream(fd_, context.value(), *cache_.tls, cache_.host);
    if (!stream) return failure(nullptr, stream.error().message);
    stream_ = std::move(stream.value());
    for (Io io; (io = stream_->handshake()) != Io::done;) {
      if (io != Io::want_read && io != Io::want_write) return failure(nullptr, stream_->error());
      if (Status s = wait(io == Io::want_read, io == Io::want_write, deadline, "TLS handshake", connect_timeout_); !s) {
        return s;
      }
    }
  }
  new_reader(/*with_functions=*/false);
  if (Status s = log_in(deadline); !s) return s;
  new_reader(/*with_functions=*/true);
  return ok_status();
}

// AUTH and SELECT, each answered before the next is sent (a refused password stops there).
Status RedisLink::log_in(MonoTime deadline) {
  std::vector<std::pair<const char*, std::vector<std::string_view>>> steps;
  const std::string db = std::to_string(cache_.db);
  if (cache_.password) steps.push_back({"AUTH", {"AUTH", *cache_.password}});
  if (cache_.db != 0) steps.push_back({"SELECT", {"SELECT", db}});
  for (const auto& [what, argv] : steps) {
    out_ = redis_command(argv);
    if (Status s = send_all(deadline, what, connect_timeout_); !s) return s;
    auto raw = receive(deadline, what, connect_timeout_);
    if (!raw) return raw.error();
    auto* reply = static_cast<redisReply*>(raw.value());
    const std::string refusal = reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len) : "";
    freeReplyObject(reply);
    if (!refusal.empty()) return failure(what, refusal);
  }
  return ok_status();
}

void RedisLink::append(const std::vector<std::string_view>& argv) { out_ += redis_command(argv); }

Status RedisLink::flush() {
  if (fd_ < 0) return failure("write", "not connected");
  return send_all(std::chrono::steady_clock::now() + query_timeout_, "write", query_timeout_);
}

Status RedisLink::send_all(MonoTime deadline, const char* what, Duration limit) {
  std::size_t sent = 0;
  while (sent < out_.size()) {
    std::size_t n = 0;
    const Io io = stream_->send(out_.data() + sent, out_.size() - sent, n);
    sent += n;
    if (io == Io::failed || io == Io::closed) return failure(what, stream_->error());
    if (io != Io::done) {
      if (Status s = wait(io == Io::want_read, io == Io::want_write, deadline, what, limit); !s) return s;
    }
  }
  out_.clear();
  return ok_status();
}

Result<void*> RedisLink::reply(const char* what) {
  if (fd_ < 0) return failure(what, "not connected");
  return receive(std::chrono::steady_clock::now() + query_timeout_, what, query_timeout_);
}

Result<void*> RedisLink::receive(MonoTime deadline, const char* what, Duration limit) {
  char buffer[16384];
  while (true) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
      return failure(what, std::string("protocol error: ") + reader_->errstr);
    }
    if (raw != nullptr) return raw;
    std::size_t n = 0;
    const Io io = stream_->receive(buffer, sizeof buffer, n);
    if (io == Io::closed) return failure(what, "connection closed by the server");
    if (io == Io::failed) return failure(what, stream_->error());
    if (io == Io::done) {
      if (redisReaderFeed(reader_, buffer, n) != REDIS_OK) return failure(what, "out of memory");
      continue;
    }
    if (Status s = wait(io == Io::want_read, io == Io::want_write, deadline, what, limit); !s) return s.error();
  }
}

}  // namespace ghostwatch::cache
