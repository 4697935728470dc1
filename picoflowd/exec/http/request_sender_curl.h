#pragma once
// CurlRequestSender: the RequestSender of the http module: each request a
// libcurl transfer (HTTP, or SMTP for an e-mail) on its own multi handle
// driven by the loop. Built only into picoflow-http.so.

#include <uv.h>

#include <list>
#include <memory>

#include "picoflowd/exec/request_sender.h"

namespace picoflow {

class CurlMulti;
class SenderTransfer;

/// Sends requests on one loop; connections are reused between them. HTTP:
/// no redirects followed, TLS always verified, a status 2xx is ok. SMTP:
/// smtps:// is TLS from the start; smtp:// upgrades with STARTTLS when the
/// server offers it, and requires it when a password is sent.
class CurlRequestSender final : public RequestSender {
 public:
  using LogFn = void (*)(const char* message);

  /// Throws std::runtime_error if curl cannot make a multi handle.
  CurlRequestSender(uv_loop_t* loop, LogFn log_error);
  ~CurlRequestSender() override;
  CurlRequestSender(const CurlRequestSender&) = delete;
  CurlRequestSender& operator=(const CurlRequestSender&) = delete;

  void Send(OutboundRequest request, Done done) override;

 private:
  friend class SenderTransfer;
  void Finished(SenderTransfer* transfer, const RequestOutcome& outcome);

  std::unique_ptr<CurlMulti> multi_;
  std::list<std::unique_ptr<SenderTransfer>> transfers_;
};

}  // namespace picoflow
