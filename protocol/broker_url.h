#pragma once
// BrokerUrl: where an MQTT broker is, parsed from the url a user writes:
// `mqtt://host[:port]` (TCP, 1883), `mqtts://host[:port]` (TLS, 8883),
// `unix:///path/to/socket`. An IPv6 address is written in brackets
// (`mqtt://[::1]:1883`). Pure: no I/O, no name resolution.

#include <string>
#include <string_view>

#include "common/result.h"

namespace picoflow {

enum class BrokerScheme { kMqtt, kMqtts, kUnix };

/// A parsed broker url.
struct BrokerUrl {
  BrokerScheme scheme = BrokerScheme::kMqtt;
  std::string host;  ///< a name or an address (IPv6 without its brackets); the path for kUnix
  int port = 0;      ///< 1..65535; 0 for kUnix (libmosquitto's "this host is a socket path")
};

/// Parses `url`. The scheme is one of mqtt, mqtts, unix (any case); the port
/// defaults to 1883 (mqtt) or 8883 (mqtts); a trailing "/" is allowed. Returns
/// a kInvalid Error naming the url and what is wrong: another scheme, user
/// info (credentials are options, not part of the url), an empty or
/// malformed host, an IPv6 address without brackets, a port out of range, a
/// path, query or fragment, a unix path that is relative or too long.
Result<BrokerUrl> ParseBrokerUrl(std::string_view url);

}  // namespace picoflow
