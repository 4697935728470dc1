#pragma once
// Result<T>: a value or an Error. Expected failures travel as values; exceptions
// from libraries are caught at module edges and turned into these.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace picoflow {

/// The conditions that callers branch on; everything else is in the message.
enum class ErrorCode {
  kInvalid,      ///< bad input from a user or client (workflow, params, flags)
  kNotFound,     ///< a named thing (workflow, run, file) does not exist
  kConflict,     ///< the thing exists / is busy / is in the wrong state
  kIo,           ///< the OS or the store refused (open, write, sqlite)
  kDiskFull,     ///< the store's disk (or its size limit) is full: a later write may fit
  kUnavailable,  ///< a capability is not available (executor, daemon)
  kInternal,     ///< a bug or an unexpected library failure
};

/// An error code and a human message that names the thing and the place.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

/// Shorthand constructor: `return Err(ErrorCode::kNotFound, "no workflow 'x'");`
inline Error Err(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

/// Holds either a T or an Error. Accessing the wrong one is a bug (asserted).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Error> v_;
};

/// Success without a value, or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace picoflow
