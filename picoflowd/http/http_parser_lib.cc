#include "picoflowd/http/http_parser_lib.h"

#include <dlfcn.h>

#include <string>

namespace picoflow {
namespace {

constexpr const char* kLibrary = "libhttp_parser.so.2.9";

template <class F>
bool Bind(void* handle, const char* name, F& slot) {
  slot = reinterpret_cast<F>(dlsym(handle, name));
  return slot != nullptr;
}

Result<const HttpParserLib*> Load() {
  void* handle = dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Err(ErrorCode::kIo, std::string("cannot load ") + kLibrary + " (" +
                                   (why != nullptr ? why : "unknown error") +
                                   "): install the package libhttp-parser2.9");
  }
  static HttpParserLib lib;
  unsigned long (*version)() = nullptr;
  const bool bound = Bind(handle, "http_parser_version", version) &&
                     Bind(handle, "http_parser_init", lib.init) &&
                     Bind(handle, "http_parser_settings_init", lib.settings_init) &&
                     Bind(handle, "http_parser_execute", lib.execute) &&
                     Bind(handle, "http_should_keep_alive", lib.should_keep_alive) &&
                     Bind(handle, "http_method_str", lib.method_str) &&
                     Bind(handle, "http_errno_description", lib.errno_description) &&
                     Bind(handle, "http_parser_pause", lib.pause);
  if (!bound) {
    dlclose(handle);
    return Err(ErrorCode::kIo, std::string(kLibrary) + " lacks a function picoflowd needs");
  }
  const unsigned long v = version();
  const unsigned long major = (v >> 16) & 255;
  const unsigned long minor = (v >> 8) & 255;
  if (major != HTTP_PARSER_VERSION_MAJOR || minor != HTTP_PARSER_VERSION_MINOR) {
    dlclose(handle);
    return Err(ErrorCode::kIo, std::string(kLibrary) + " is version " + std::to_string(major) +
                                   "." + std::to_string(minor) + ", picoflowd was built for " +
                                   std::to_string(HTTP_PARSER_VERSION_MAJOR) + "." +
                                   std::to_string(HTTP_PARSER_VERSION_MINOR));
  }
  return static_cast<const HttpParserLib*>(&lib);  // the handle stays open for the process
}

}  // namespace

Result<const HttpParserLib*> LoadHttpParser() {
  static const Result<const HttpParserLib*> loaded = Load();
  return loaded;
}

}  // namespace picoflow
