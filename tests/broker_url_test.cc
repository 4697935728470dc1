// ParseBrokerUrl: the broker urls a user may write, their defaults, and the
// mistakes it names.

#include "protocol/broker_url.h"

#include <doctest/doctest.h>

#include <string>

namespace picoflow {
namespace {

std::string Describe(const BrokerUrl& url) {
  const char* scheme = url.scheme == BrokerScheme::kMqtt    ? "mqtt"
                       : url.scheme == BrokerScheme::kMqtts ? "mqtts"
                                                            : "unix";
  return std::string(scheme) + " " + url.host + " " + std::to_string(url.port);
}

std::string Parsed(std::string_view text) {
  auto url = ParseBrokerUrl(text);
  return url ? Describe(*url) : "error: " + url.error().message;
}

}  // namespace

TEST_CASE("a broker url gives its scheme, host and port, with the scheme's default port") {
  CHECK(Parsed("mqtt://broker.lan") == "mqtt broker.lan 1883");
  CHECK(Parsed("mqtts://broker.lan") == "mqtts broker.lan 8883");
  CHECK(Parsed("mqtt://10.0.0.5:1884") == "mqtt 10.0.0.5 1884");
  CHECK(Parsed("mqtts://broker.lan:443/") == "mqtts broker.lan 443");
  CHECK(Parsed("MQTT://Broker:1") == "mqtt Broker 1");
  CHECK(Parsed("mqtt://[::1]:1883") == "mqtt ::1 1883");
  CHECK(Parsed("mqtts://[fe80::1]") == "mqtts fe80::1 8883");
  CHECK(Parsed("unix:///run/mosquitto/mqtt.sock") == "unix /run/mosquitto/mqtt.sock 0");
}

TEST_CASE("a broker url that is wrong is refused with what is wrong") {
  const std::pair<const char*, const char*> cases[] = {
      {"broker.lan:1883", "expected mqtt://HOST[:PORT]"},
      {"http://broker.lan", "unknown scheme 'http'"},
      {"mqtt://", "names no host"},
      {"mqtt://:1883", "names no host"},
      {"mqtt://broker.lan:0", "the port must be a number 1-65535"},
      {"mqtt://broker.lan:65536", "the port must be a number 1-65535"},
      {"mqtt://broker.lan:12ab", "the port must be a number 1-65535"},
      {"mqtt://broker.lan:", "the port must be a number 1-65535"},
      {"mqtt://::1", "written in brackets"},
      {"mqtt://[::1", "lacks its ']'"},
      {"mqtt://[broker]:1883", "is not an IPv6 address"},
      {"mqtt://[::1]x", "expected ':PORT'"},
      {"mqtt://user:pw@broker.lan", "credentials are not part of the url"},
      {"mqtt://broker.lan/topic", "no path, query or fragment"},
      {"mqtt://broker.lan?x=1", "no path, query or fragment"},
      {"mqtt://bro ker", "is not a host name"},
      {"unix://relative/path", "unix:///absolute/path"},
      {"unix://", "unix:///absolute/path"},
  };
  for (const auto& [url, why] : cases) {
    CAPTURE(url);
    auto parsed = ParseBrokerUrl(url);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.error().code == ErrorCode::kInvalid);
    CHECK(parsed.error().message.find(why) != std::string::npos);
    CHECK(parsed.error().message.find(std::string("'") + url + "'") != std::string::npos);
  }
  CHECK(Parsed("unix:///" + std::string(200, 'a')).find("longer than") != std::string::npos);
  CHECK(Parsed("mqtt://bro\x01ker").find("\\x01") != std::string::npos);  // escaped, not raw
}

}  // namespace picoflow
