// Result<T>: a value or an error message. Backends return it instead of throwing, so that one
// failed poll is a counted error and never an exception that tears down a probe thread.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace ghostwatch {

struct Error {
  Error(std::string m, std::string c = {}) : message(std::move(m)), code(std::move(c)) {}  // NOLINT
  std::string message;
  std::string code;  // backend-specific error code (e.g. a SQLSTATE); empty when unknown
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}   // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace ghostwatch
