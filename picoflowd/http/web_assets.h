#pragma once
// The web page's files (web/), embedded at build time by web/embed.py: each
// with its content type, ETag and a gzip copy (docs/http-api.md, "The page").

#include <cstddef>
#include <string_view>

namespace picoflow {

struct WebAsset {
  std::string_view path;  ///< "/app.js"
  std::string_view content_type;
  std::string_view etag;  ///< quoted, as sent
  std::string_view body;
  std::string_view gzip;  ///< the body, gzip-compressed
};

extern const WebAsset kWebAssets[];
extern const std::size_t kWebAssetCount;

/// The asset served at `path` ("/" is /index.html), or nullptr.
const WebAsset* FindWebAsset(std::string_view path);

}  // namespace picoflow
