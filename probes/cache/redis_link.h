// The blocking Redis connection that the cache reader's thread and the reconciler share: TCP or
// TLS (verified before AUTH is sent), authenticated (AUTH) and on its database (SELECT), every
// step bounded by a deadline, failing with the same words. Commands are queued, sent together
// and answered in order (pipelining); replies are parsed by hiredis' reader, whose reply
// objects the owner may replace (the reconciler reads into flat batches).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "common/tls_client.h"
#include "probes/probe_config.h"

struct redisReader;
struct redisReplyObjectFunctions;

namespace ghostwatch::cache {

class RedisLink {
 public:
  // A connect gives up after `connect_timeout` (lookup, TCP, TLS, AUTH and SELECT together), a
  // flush or a reply after `query_timeout`.
  RedisLink(const CacheTargetConfig& cache, Duration connect_timeout, Duration query_timeout);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  // Connects unless connected. On failure nothing is left open, and the error names the server,
  // the step and the reason (WRONGPASS, a certificate that does not verify), never the password.
  Status connect();
  bool connected() const { return fd_ >= 0; }
  // Replies are built by `functions` with `privdata` from the next connect on (null: hiredis'
  // redisReply objects, which the caller frees with freeReplyObject).
  void set_reply_functions(redisReplyObjectFunctions* functions, void* privdata);

  void append(const std::vector<std::string_view>& argv);
  Status flush();
  // The next reply (never null); `what` names the command in the error.
  Result<void*> reply(const char* what);
  // Closes the connection, with whatever it had queued.
  void close();
  // An error naming `what` and `why`, after which the connection is closed.
  Error failure(const char* what, const std::string& why);

 private:
  Status open_socket(MonoTime deadline);
  Status wait(bool read, bool write, MonoTime deadline, const char* what, Duration limit);
  Status send_all(MonoTime deadline, const char* what, Duration limit);
  Result<void*> receive(MonoTime deadline, const char* what, Duration limit);
  Status log_in(MonoTime deadline);
  void new_reader(bool with_functions);

  CacheTargetConfig cache_;
  Duration connect_timeout_, query_timeout_;
  redisReplyObjectFunctions* functions_ = nullptr;
  void* privdata_ = nullptr;
  int fd_ = -1;
  std::unique_ptr<ByteStream> stream_;
  redisReader* reader_ = nullptr;
  std::string out_;
};

// "redis HOST:PORT: WHAT failed: WHY", or "redis HOST:PORT: WHY" without `what`, scrubbed of
// secrets.
Error redis_error(const CacheTargetConfig& cache, const char* what, const std::string& why);

// The RESP encoding of a command.
std::string redis_command(const std::vector<std::string_view>& argv);

}  // namespace ghostwatch::cache
