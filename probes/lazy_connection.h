// LazyConnection: a backend connection opened on first use, re-opened after a transport
// failure, and set up (tables, statements) by a callback each time it opens. Shared by every
// backend so that the reconnect logic exists once; the probe paces retries with Backoff.
#pragma once

#include <memory>
#include <stop_token>
#include <utility>

#include "common/result.h"

namespace ghostwatch {

// Conn needs: static Result<std::unique_ptr<Conn>> open(const Options&, std::stop_token) and
// bool broken() const.
template <class Conn, class Options>
class LazyConnection {
 public:
  explicit LazyConnection(Options options) : options_(std::move(options)) {}

  // The open connection, opening it and running `on_open(Conn&) -> Status` first if needed.
  template <class OnOpen>
  Result<Conn*> get(std::stop_token stop, OnOpen on_open) {
    if (conn_ && conn_->broken()) conn_.reset();
    if (!conn_) {
      auto opened = Conn::open(options_, stop);
      if (!opened) return opened.error();
      conn_ = std::move(opened.value());
      if (Status s = on_open(*conn_); !s) {
        conn_.reset();
        return s.error();
      }
    }
    return conn_.get();
  }

  // Closes the connection: the next get() opens a new one and sets it up again (e.g. to
  // re-create a canary table dropped while the agent runs).
  void reset() { conn_.reset(); }

 private:
  Options options_;
  std::unique_ptr<Conn> conn_;
};

}  // namespace ghostwatch
