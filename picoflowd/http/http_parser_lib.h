#pragma once
// HttpParserLib: nodejs/http-parser (Debian's libhttp-parser2.9), the parser
// of the HTTP listener. It is loaded with dlopen when the listener starts, so
// a daemon without `http_listen` maps none of it (docs/architecture.md, "The
// layers").

#include <http_parser.h>

#include "common/result.h"

namespace picoflow {

/// The functions of the library the server uses.
struct HttpParserLib {
  void (*init)(http_parser* parser, enum http_parser_type type) = nullptr;
  void (*settings_init)(http_parser_settings* settings) = nullptr;
  size_t (*execute)(http_parser* parser, const http_parser_settings* settings, const char* data,
                    size_t len) = nullptr;
  int (*should_keep_alive)(const http_parser* parser) = nullptr;
  const char* (*method_str)(enum http_method method) = nullptr;
  const char* (*errno_description)(enum http_errno err) = nullptr;
  void (*pause)(http_parser* parser, int paused) = nullptr;
};

/// Loads the library once (later calls return the same table). Refuses a
/// library whose major.minor differs from the header picoflowd was built
/// with: the parser struct is laid out by the header. The Error names the
/// file and the package to install.
Result<const HttpParserLib*> LoadHttpParser();

}  // namespace picoflow
