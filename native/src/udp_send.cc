// Batched sends of SIP datagrams on a UDP socket that node:dgram owns (the
// descriptor of its handle): the datagrams one event-loop turn queued for a
// listening socket leave in one sendmmsg instead of one uv_udp_send, one
// callback and one system call each. Linux only.
#include "udp_send.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace rtcedge {
namespace {

// sockaddrFor(ip): a sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes, scope 0) for
// IP text `ip` with port 0, or null when `ip` is not an IP literal.
Napi::Value SockaddrFor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return env.Null();
  const std::string text = info[0].As<Napi::String>().Utf8Value();
  in_addr a4;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    sockaddr_in s;
    std::memset(&s, 0, sizeof s);
    s.sin_family = AF_INET;
    s.sin_addr = a4;
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(&s), sizeof s);
  }
  in6_addr a6;
  if (inet_pton(AF_INET6, text.c_str(), &a6) == 1) {
    sockaddr_in6 s;
    std::memset(&s, 0, sizeof s);
    s.sin6_family = AF_INET6;
    s.sin6_addr = a6;
    return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(&s), sizeof s);
  }
  return env.Null();
}

// Errors after which the rest of the batch is left to the caller (it sends them another way):
// the socket buffer is full, or the descriptor is not (or no longer) a socket.
bool StopsBatch(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS || err == EBADF || err == ENOTSOCK;
}

// sendBatch(fd, datagrams: Buffer[], sockaddrs: Buffer[], ports: Int32Array, count, errors: Int32Array):
// sends datagrams[0..count) to sockaddrs[i] with port ports[i] in as few sendmmsg calls as the
// kernel allows (MSG_DONTWAIT). A datagram the kernel refuses on its own (EMSGSIZE, ENETUNREACH,
// EACCES, EINVAL...) gets errors[i] = errno and the batch goes on; EAGAIN/ENOBUFS/EBADF/ENOTSOCK stop
// it. Returns how many datagrams were handled (sent or refused): the caller sends the rest itself.
Napi::Value SendBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 6 || !info[0].IsNumber() || !info[1].IsArray() || !info[2].IsArray() || !info[3].IsTypedArray() ||
      !info[4].IsNumber() || !info[5].IsTypedArray()) {
    Napi::TypeError::New(env, "sendBatch(fd, datagrams, sockaddrs, ports, count, errors)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int fd = info[0].As<Napi::Number>().Int32Value();
  Napi::Array datagrams = info[1].As<Napi::Array>();
  Napi::Array sockaddrs = info[2].As<Napi::Array>();
  Napi::Int32Array ports = info[3].As<Napi::Int32Array>();
  Napi::Int32Array errors = info[5].As<Napi::Int32Array>();
  int64_t count = info[4].As<Napi::Number>().Int64Value();
  if (count < 0) count = 0;
  if (count > static_cast<int64_t>(kMaxUdpBatch)) count = kMaxUdpBatch;
  if (count > static_cast<int64_t>(datagrams.Length())) count = datagrams.Length();
  if (count > static_cast<int64_t>(sockaddrs.Length())) count = sockaddrs.Length();
  if (count > static_cast<int64_t>(ports.ElementLength())) count = ports.ElementLength();
  if (count > static_cast<int64_t>(errors.ElementLength())) count = errors.ElementLength();
  const unsigned n = static_cast<unsigned>(count);

  mmsghdr msgs[kMaxUdpBatch];
  iovec iovs[kMaxUdpBatch];
  sockaddr_storage addrs[kMaxUdpBatch];
  for (unsigned i = 0; i < n; i++) {
    Napi::Value d = datagrams.Get(i);
    Napi::Value a = sockaddrs.Get(i);
    if (!d.IsBuffer() || !a.IsBuffer()) {
      Napi::TypeError::New(env, "sendBatch: datagrams and sockaddrs must be Buffers").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Buffer<uint8_t> data = d.As<Napi::Buffer<uint8_t>>();
    Napi::Buffer<uint8_t> sa = a.As<Napi::Buffer<uint8_t>>();
    const size_t salen = sa.Length();
    if (salen != sizeof(sockaddr_in) && salen != sizeof(sockaddr_in6)) {
      Napi::TypeError::New(env, "sendBatch: a sockaddr is 16 or 28 bytes").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::memcpy(&addrs[i], sa.Data(), salen);
    const uint16_t port = htons(static_cast<uint16_t>(ports[i]));
    if (salen == sizeof(sockaddr_in)) {
      reinterpret_cast<sockaddr_in*>(&addrs[i])->sin_port = port;
    } else {
      reinterpret_cast<sockaddr_in6*>(&addrs[i])->sin6_port = port;
    }
    iovs[i].iov_base = data.Data();
    iovs[i].iov_len = data.Length();
    std::memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &addrs[i];
    msgs[i].msg_hdr.msg_namelen = static_cast<socklen_t>(salen);
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    errors[i] = 0;
  }

  unsigned done = 0;
  while (done < n) {
    const int sent = sendmmsg(fd, &msgs[done], n - done, MSG_DONTWAIT);
    if (sent > 0) {
      done += static_cast<unsigned>(sent);
      continue;
    }
    const int err = sent == 0 ? EAGAIN : errno;
    if (err == EINTR) continue;
    if (StopsBatch(err)) break;
    // sendmmsg reports the error of the first datagram it could not send: that one is refused, the rest go on.
    errors[done] = err;
    done++;
  }
  return Napi::Number::New(env, done);
}

}  // namespace

void InitUdpSend(Napi::Env env, Napi::Object exports) {
  exports.Set("sockaddrFor", Napi::Function::New(env, SockaddrFor, "sockaddrFor"));
  exports.Set("sendBatch", Napi::Function::New(env, SendBatch, "sendBatch"));
  exports.Set("maxUdpBatch", Napi::Number::New(env, kMaxUdpBatch));
}

}  // namespace rtcedge
