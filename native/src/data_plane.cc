// rtcedge TURN UDP data plane (RFC 8656): owns the client-facing UDP sockets
// and the relay sockets, runs one epoll thread that receives with recvmmsg and
// sends with sendmmsg, and forwards ChannelData (§12) and Send/Data
// indications (§10) using permission and channel tables mirrored from the
// TypeScript control plane. Everything else received on a client socket (STUN
// requests, Binding, malformed input), and peer datagrams of relays not
// attached to a client socket of this addon, are handed to JavaScript through
// a thread-safe function. The JavaScript surface is described in
// src/turn/native-addon.ts.

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <napi.h>

#include "stun_fast.h"
#include "udp_send.h"
#include "udp_steer.h"

namespace rtcedge {
namespace {

constexpr int kBatch = 64;             // datagrams per recvmmsg
constexpr int kSlots = 256;            // receive buffers per data plane
constexpr size_t kHeadroom = 64;       // room for a Data indication header before the payload
constexpr size_t kSlotData = 65536;    // largest datagram
constexpr size_t kSlotSize = kHeadroom + kSlotData + 8;
constexpr int kMaxEvents = 64;
constexpr size_t kMaxControlQueue = 4096;  // datagrams waiting for JavaScript before drops
constexpr size_t kMaxRelayData = 0xFFFF - 64;

// Counter indexes; names in kCounterNames, same order.
enum Counter {
  kFromClientPackets, kFromClientBytes, kToPeerPackets, kToPeerBytes,
  kFromPeerPackets, kFromPeerBytes, kToClientPackets, kToClientBytes,
  kToControlPackets, kToControlBytes, kFromControlPackets, kFromControlBytes,
  kDropNoAllocation, kDropNoPermission, kDropNoChannel, kDropMalformed, kDropBadFingerprint,
  kDropTooBig, kDropQueueFull, kDropSendFailed,
  kCounterCount
};
const char* const kCounterNames[kCounterCount] = {
  "fromClientPackets", "fromClientBytes", "toPeerPackets", "toPeerBytes",
  "fromPeerPackets", "fromPeerBytes", "toClientPackets", "toClientBytes",
  "toControlPackets", "toControlBytes", "fromControlPackets", "fromControlBytes",
  "dropNoAllocation", "dropNoPermission", "dropNoChannel", "dropMalformed", "dropBadFingerprint",
  "dropTooBig", "dropQueueFull", "dropSendFailed",
};

struct Ip16 {
  uint8_t b[16];
  bool operator==(const Ip16& o) const { return std::memcmp(b, o.b, 16) == 0; }
};
struct Ip16Hash {
  size_t operator()(const Ip16& k) const {
    uint64_t a, b;
    std::memcpy(&a, k.b, 8);
    std::memcpy(&b, k.b + 8, 8);
    return static_cast<size_t>((a * 0x9E3779B97F4A7C15ull) ^ (b + 0x632BE59BD9B4E019ull + (a << 6)));
  }
};
// A transport address, plus the id of the client socket for client keys (0 for peers).
struct Endpoint {
  Ip16 ip;
  uint16_t port;
  uint32_t sock;
  bool operator==(const Endpoint& o) const { return port == o.port && sock == o.sock && ip == o.ip; }
};
struct EndpointHash {
  size_t operator()(const Endpoint& k) const {
    return Ip16Hash()(k.ip) ^ (static_cast<size_t>(k.port) * 0x100000001B3ull) ^ (static_cast<size_t>(k.sock) << 40);
  }
};

bool IsV4Mapped(const Ip16& ip) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  return std::memcmp(ip.b, prefix, 12) == 0;
}

void FromSockaddr(const sockaddr_storage& ss, Ip16* ip, uint16_t* port) {
  if (ss.ss_family == AF_INET) {
    const auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    std::memset(ip->b, 0, 10);
    ip->b[10] = ip->b[11] = 0xFF;
    std::memcpy(ip->b + 12, &s->sin_addr, 4);
    *port = ntohs(s->sin_port);
  } else {
    const auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    std::memcpy(ip->b, &s->sin6_addr, 16);
    *port = ntohs(s->sin6_port);
  }
}

// Fills `ss` for a socket of `family`; false when an IPv6 address cannot be reached from an IPv4 socket.
bool ToSockaddr(int family, const Ip16& ip, uint16_t port, sockaddr_storage* ss, socklen_t* len) {
  std::memset(ss, 0, sizeof(sockaddr_in6));
  if (family == AF_INET) {
    if (!IsV4Mapped(ip)) return false;
    auto* s = reinterpret_cast<sockaddr_in*>(ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, ip.b + 12, 4);
    *len = sizeof(sockaddr_in);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, ip.b, 16);
    *len = sizeof(sockaddr_in6);
  }
  return true;
}

bool ParseIp(const std::string& text, Ip16* ip) {
  in_addr a4;
  if (inet_pton(AF_INET, text.c_str(), &a4) == 1) {
    std::memset(ip->b, 0, 10);
    ip->b[10] = ip->b[11] = 0xFF;
    std::memcpy(ip->b + 12, &a4, 4);
    return true;
  }
  return inet_pton(AF_INET6, text.c_str(), ip->b) == 1;
}

std::string FormatIp(const Ip16& ip) {
  char buf[INET6_ADDRSTRLEN];
  if (IsV4Mapped(ip)) inet_ntop(AF_INET, ip.b + 12, buf, sizeof buf);
  else inet_ntop(AF_INET6, ip.b, buf, sizeof buf);
  return buf;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct Channel {
  Ip16 ip;
  uint16_t port;
  int64_t expires;
};

struct Sock {
  int fd = -1;
  int family = AF_INET;
  uint32_t id = 0;
  bool is_client = false;  // a client-facing listener; else a relay
  bool closed = false;
  // Relay only: the client 5-tuple it is attached to, lifetime and tables (RFC 8656 §2.2, §9, §12).
  Sock* client_sock = nullptr;
  Ip16 client_ip{};
  uint16_t client_port = 0;
  int64_t expires = 0;
  std::unordered_map<Ip16, int64_t, Ip16Hash> permissions;
  std::unordered_map<uint16_t, Channel> channels;
  std::unordered_map<Endpoint, uint16_t, EndpointHash> channel_by_peer;
};

struct Received {
  Sock* from;
  uint8_t* data;
  size_t len;
  sockaddr_storage src;
};

struct Outgoing {
  int fd;
  uint8_t* data;
  size_t len;
  sockaddr_storage dst;
  socklen_t dst_len;
};

// One datagram for JavaScript: kind 0 = from a client socket, 1 = from a peer on an unattached relay.
struct Handoff {
  int kind;
  uint32_t sock;
  std::string address;
  uint16_t port;
  std::vector<uint8_t> data;
};

uint64_t SplitMix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class DataPlane : public Napi::ObjectWrap<DataPlane> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "DataPlane", {
      InstanceMethod<&DataPlane::Listen>("listen"),
      InstanceMethod<&DataPlane::OpenRelay>("openRelay"),
      InstanceMethod<&DataPlane::Attach>("attach"),
      InstanceMethod<&DataPlane::SetExpiry>("setExpiry"),
      InstanceMethod<&DataPlane::SetPermission>("setPermission"),
      InstanceMethod<&DataPlane::SetChannel>("setChannel"),
      InstanceMethod<&DataPlane::CloseSocket>("closeSocket"),
      InstanceMethod<&DataPlane::SendTo>("sendTo"),
      InstanceMethod<&DataPlane::Stats>("stats"),
      InstanceMethod<&DataPlane::Close>("close"),
    });
  }

  explicit DataPlane(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DataPlane>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsFunction()) {
      Napi::TypeError::New(env, "DataPlane(onPacket: function)").ThrowAsJavaScriptException();
      return;
    }
    for (auto& c : counters_) c.store(0, std::memory_order_relaxed);
    if (getrandom(&rng_, sizeof rng_, 0) != sizeof rng_) rng_ = static_cast<uint64_t>(NowMs()) ^ reinterpret_cast<uintptr_t>(this);
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    slots_ = static_cast<uint8_t*>(std::malloc(kSlots * kSlotSize));
    if (epfd_ < 0 || evfd_ < 0 || slots_ == nullptr) {
      std::string why = std::strerror(errno);
      Release();
      Napi::Error::New(env, "data plane: cannot create epoll/eventfd: " + why).ThrowAsJavaScriptException();
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, evfd_, &ev);
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "rtcedge-turn-data-plane", kMaxControlQueue, 1);
    has_tsfn_ = true;
    running_ = true;
    thread_ = std::thread([this] { Loop(); });
  }

  ~DataPlane() override { Shutdown(); }

 private:
  // ---- JavaScript methods (main thread) ----

  // listen(host, port) -> { id, port }: binds a client-facing UDP socket.
  Napi::Value Listen(const Napi::CallbackInfo& info) {
    return Bind(info, true);
  }

  // openRelay(host, port) -> id, or -1 when the port is taken: binds a relay socket (exclusive).
  Napi::Value OpenRelay(const Napi::CallbackInfo& info) {
    return Bind(info, false);
  }

  Napi::Value Bind(const Napi::CallbackInfo& info, bool is_client) {
    Napi::Env env = info.Env();
    if (!running_) return Throw(env, "data plane closed");
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsNumber()) return Throw(env, "expected (host: string, port: number)");
    const std::string host = info[0].As<Napi::String>().Utf8Value();
    const int port = info[1].As<Napi::Number>().Int32Value();
    Ip16 ip;
    if (!ParseIp(host, &ip) || port < 0 || port > 65535) return Throw(env, "bad address " + host);
    const int family = IsV4Mapped(ip) ? AF_INET : AF_INET6;
    int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Throw(env, std::string("socket: ") + std::strerror(errno));
    if (family == AF_INET6) {
      int off = 0;
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    int buf = is_client ? 4 << 20 : 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    sockaddr_storage ss;
    socklen_t sl;
    ToSockaddr(family, ip, static_cast<uint16_t>(port), &ss, &sl);
    if (bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0) {
      const int err = errno;
      close(fd);
      if (!is_client && (err == EADDRINUSE || err == EACCES)) return Napi::Number::New(env, -1);
      const char* name = strerrorname_np(err);
      return Throw(env, "bind " + host + ":" + std::to_string(port) + ": " + (name ? name : "") + " (" + std::strerror(err) + ")");
    }
    sl = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
    Ip16 bound_ip;
    uint16_t bound_port;
    FromSockaddr(ss, &bound_ip, &bound_port);
    auto* s = new Sock();
    s->fd = fd;
    s->family = family;
    s->is_client = is_client;
    {
      std::lock_guard<std::mutex> lock(mu_);
      s->id = ++next_id_;
      socks_[s->id] = s;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = s;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    if (!is_client) return Napi::Number::New(env, s->id);
    Napi::Object r = Napi::Object::New(env);
    r.Set("id", s->id);
    r.Set("port", bound_port);
    return r;
  }

  // attach(relayId, clientSockId, clientIp, clientPort, expiresAtMs): the relay's allocation belongs to that client 5-tuple.
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5) return Throw(env, "expected (relayId, clientSockId, clientIp, clientPort, expiresAtMs)");
    Ip16 ip;
    if (!ParseIp(info[2].As<Napi::String>().Utf8Value(), &ip)) return Throw(env, "bad client address");
    std::lock_guard<std::mutex> lock(mu_);
    Sock* r = Find(info[0], false);
    Sock* c = Find(info[1], true);
    if (r == nullptr || c == nullptr) return Napi::Boolean::New(env, false);
    if (c->family == AF_INET && !IsV4Mapped(ip)) return Napi::Boolean::New(env, false);
    if (r->client_sock != nullptr) by_client_.erase(Endpoint{r->client_ip, r->client_port, r->client_sock->id});
    r->client_sock = c;
    r->client_ip = ip;
    r->client_port = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
    r->expires = static_cast<int64_t>(info[4].As<Napi::Number>().DoubleValue());
    by_client_[Endpoint{ip, r->client_port, c->id}] = r;
    return Napi::Boolean::New(env, true);
  }

  // setExpiry(relayId, expiresAtMs): allocation refreshed (RFC 8656 §8).
  Napi::Value SetExpiry(const Napi::CallbackInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    Sock* r = Find(info[0], false);
    if (r) r->expires = static_cast<int64_t>(info[1].As<Napi::Number>().DoubleValue());
    return Napi::Boolean::New(info.Env(), r != nullptr);
  }

  // setPermission(relayId, peerIp, expiresAtMs): installs or refreshes; expiresAtMs 0 removes (RFC 8656 §9).
  Napi::Value SetPermission(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ip16 ip;
    if (info.Length() < 3 || !ParseIp(info[1].As<Napi::String>().Utf8Value(), &ip)) return Throw(env, "bad peer address");
    const int64_t exp = static_cast<int64_t>(info[2].As<Napi::Number>().DoubleValue());
    std::lock_guard<std::mutex> lock(mu_);
    Sock* r = Find(info[0], false);
    if (r == nullptr) return Napi::Boolean::New(env, false);
    if (exp == 0) r->permissions.erase(ip);
    else r->permissions[ip] = exp;
    return Napi::Boolean::New(env, true);
  }

  // setChannel(relayId, channel, peerIp, peerPort, expiresAtMs): binds or refreshes; expiresAtMs 0 removes (RFC 8656 §12).
  Napi::Value SetChannel(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ip16 ip;
    if (info.Length() < 5 || !ParseIp(info[2].As<Napi::String>().Utf8Value(), &ip)) return Throw(env, "bad peer address");
    const uint32_t number = info[1].As<Napi::Number>().Uint32Value();
    if (number < 0x4000 || number > 0x7FFF) return Throw(env, "channel number out of range");
    const uint16_t port = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
    const int64_t exp = static_cast<int64_t>(info[4].As<Napi::Number>().DoubleValue());
    std::lock_guard<std::mutex> lock(mu_);
    Sock* r = Find(info[0], false);
    if (r == nullptr) return Napi::Boolean::New(env, false);
    const uint16_t ch = static_cast<uint16_t>(number);
    auto old = r->channels.find(ch);
    if (old != r->channels.end()) {
      r->channel_by_peer.erase(Endpoint{old->second.ip, old->second.port, 0});
      r->channels.erase(old);
    }
    if (exp != 0) {
      r->channels[ch] = Channel{ip, port, exp};
      r->channel_by_peer[Endpoint{ip, port, 0}] = ch;
    }
    return Napi::Boolean::New(env, true);
  }

  // closeSocket(id): stops forwarding at once; the fd is closed by the data plane thread.
  Napi::Value CloseSocket(const Napi::CallbackInfo& info) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      Sock* s = Find(info[0], false);
      if (s == nullptr) s = Find(info[0], true);
      if (s == nullptr) return Napi::Boolean::New(info.Env(), false);
      Unlink(s);
      if (s->is_client) {
        for (auto& kv : socks_) {
          Sock* r = kv.second;
          if (!r->is_client && r->client_sock == s) {
            by_client_.erase(Endpoint{r->client_ip, r->client_port, s->id});
            r->client_sock = nullptr;
          }
        }
      }
      to_close_.push_back(s);
    }
    Wake();
    return Napi::Boolean::New(info.Env(), true);
  }

  // sendTo(sockId, ip, port, data): one datagram from a client socket or relay socket (control plane responses, slow path).
  Napi::Value SendTo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Ip16 ip;
    if (info.Length() < 4 || !info[3].IsBuffer() || !ParseIp(info[1].As<Napi::String>().Utf8Value(), &ip)) return Throw(env, "expected (sockId, ip, port, data: Buffer)");
    auto data = info[3].As<Napi::Buffer<uint8_t>>();
    const uint16_t port = static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value());
    std::lock_guard<std::mutex> lock(mu_);
    auto it = socks_.find(info[0].As<Napi::Number>().Uint32Value());
    if (it == socks_.end()) return Napi::Boolean::New(env, false);
    Sock* s = it->second;
    sockaddr_storage ss;
    socklen_t sl;
    if (!ToSockaddr(s->family, ip, port, &ss, &sl)) return Napi::Boolean::New(env, false);
    const ssize_t n = sendto(s->fd, data.Data(), data.Length(), 0, reinterpret_cast<sockaddr*>(&ss), sl);
    if (n < 0) {
      Count(kDropSendFailed);
      return Napi::Boolean::New(env, false);
    }
    Count(kFromControlPackets);
    Count(kFromControlBytes, data.Length());
    return Napi::Boolean::New(env, true);
  }

  // stats() -> { [counter]: number, sockets: number }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    for (int i = 0; i < kCounterCount; i++) o.Set(kCounterNames[i], static_cast<double>(counters_[i].load(std::memory_order_relaxed)));
    size_t n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = socks_.size();
    }
    o.Set("sockets", static_cast<double>(n));
    return o;
  }

  // close(): stops the thread and closes every socket; idempotent.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  // ---- helpers ----

  Napi::Value Throw(Napi::Env env, const std::string& msg) {
    Napi::Error::New(env, msg).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // With mu_ held: the open socket with that id and kind, or nullptr.
  Sock* Find(const Napi::Value& id, bool is_client) {
    if (!id.IsNumber()) return nullptr;
    auto it = socks_.find(id.As<Napi::Number>().Uint32Value());
    if (it == socks_.end() || it->second->is_client != is_client) return nullptr;
    return it->second;
  }

  // With mu_ held: removes `s` from every lookup table and marks it closed.
  void Unlink(Sock* s) {
    s->closed = true;
    socks_.erase(s->id);
    if (!s->is_client && s->client_sock != nullptr) by_client_.erase(Endpoint{s->client_ip, s->client_port, s->client_sock->id});
    s->client_sock = nullptr;
  }

  void Wake() {
    uint64_t one = 1;
    if (write(evfd_, &one, sizeof one) < 0) { /* counter saturated: the thread is awake anyway */ }
  }

  void Count(Counter c, uint64_t n = 1) { counters_[c].fetch_add(n, std::memory_order_relaxed); }

  void Shutdown() {
    if (running_) {
      running_ = false;
      stopping_.store(true);
      Wake();
      if (thread_.joinable()) thread_.join();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& kv : socks_) to_close_.push_back(kv.second);
      socks_.clear();
      by_client_.clear();
      for (Sock* s : to_close_) {
        close(s->fd);
        delete s;
      }
      to_close_.clear();
    }
    if (has_tsfn_) {
      has_tsfn_ = false;
      tsfn_.Release();
    }
    Release();
  }

  void Release() {
    if (epfd_ >= 0) close(epfd_);
    if (evfd_ >= 0) close(evfd_);
    epfd_ = evfd_ = -1;
    std::free(slots_);
    slots_ = nullptr;
  }

  // ---- data plane thread ----

  void Loop() {
    std::vector<mmsghdr> msgs(kSlots);
    std::vector<iovec> iovs(kSlots);
    std::vector<Received> rx(kSlots);
    epoll_event events[kMaxEvents];
    while (!stopping_.load(std::memory_order_relaxed)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (Sock* s : to_close_) {
          epoll_ctl(epfd_, EPOLL_CTL_DEL, s->fd, nullptr);
          close(s->fd);
          delete s;
        }
        to_close_.clear();
      }
      const int n = epoll_wait(epfd_, events, kMaxEvents, 1000);
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      size_t used = 0;
      for (int i = 0; i < n; i++) {
        Sock* s = static_cast<Sock*>(events[i].data.ptr);
        if (s == nullptr) {
          uint64_t v;
          if (read(evfd_, &v, sizeof v) < 0) { /* nothing pending */ }
          continue;
        }
        if (kSlots - used < static_cast<size_t>(kBatch)) {
          Process(rx.data(), used);
          used = 0;
        }
        for (int k = 0; k < kBatch; k++) {
          uint8_t* buf = slots_ + (used + k) * kSlotSize + kHeadroom;
          iovs[used + k] = iovec{buf, kSlotData};
          mmsghdr& m = msgs[used + k];
          std::memset(&m, 0, sizeof m);
          m.msg_hdr.msg_iov = &iovs[used + k];
          m.msg_hdr.msg_iovlen = 1;
          m.msg_hdr.msg_name = &rx[used + k].src;
          m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        }
        const int got = recvmmsg(s->fd, &msgs[used], kBatch, MSG_DONTWAIT, nullptr);
        for (int k = 0; k < got; k++) {
          Received& r = rx[used + k];
          r.from = s;
          r.data = static_cast<uint8_t*>(iovs[used + k].iov_base);
          r.len = msgs[used + k].msg_len;
          if (msgs[used + k].msg_hdr.msg_flags & MSG_TRUNC) r.len = 0;
        }
        if (got > 0) used += got;
      }
      if (used > 0) Process(rx.data(), used);
    }
  }

  // Classifies and forwards `n` received datagrams, then sends what they produced.
  void Process(Received* rx, size_t n) {
    out_.clear();
    handoffs_.clear();
    const int64_t now = NowMs();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < n; i++) {
        Received& r = rx[i];
        if (r.from->closed) continue;
        if (r.from->is_client) FromClient(r, now);
        else FromPeer(r, now);
      }
    }
    for (Handoff* h : handoffs_) {
      if (tsfn_.NonBlockingCall(h, CallJs) != napi_ok) {
        Count(kDropQueueFull);
        delete h;
      }
    }
    Flush();
  }

  static void CallJs(Napi::Env env, Napi::Function cb, Handoff* h) {
    if (env != nullptr && !cb.IsEmpty()) {
      cb.Call({Napi::Number::New(env, h->kind), Napi::Number::New(env, h->sock), Napi::String::New(env, h->address),
               Napi::Number::New(env, h->port), Napi::Buffer<uint8_t>::Copy(env, h->data.data(), h->data.size())});
    }
    delete h;
  }

  void HandOff(int kind, const Received& r) {
    Ip16 ip;
    uint16_t port;
    FromSockaddr(r.src, &ip, &port);
    auto* h = new Handoff{kind, r.from->id, FormatIp(ip), port, std::vector<uint8_t>(r.data, r.data + r.len)};
    handoffs_.push_back(h);
    Count(kToControlPackets);
    Count(kToControlBytes, r.len);
  }

  // With mu_ held: a datagram from a client (RFC 8656 §10.2 Send indication, §12.5 ChannelData).
  void FromClient(Received& r, int64_t now) {
    Count(kFromClientPackets);
    Count(kFromClientBytes, r.len);
    if (r.len == 0) {
      Count(kDropMalformed);
      return;
    }
    const uint8_t* d = r.data;
    const bool channel_data = (d[0] & 0xC0) == 0x40;
    const bool send_ind = r.len >= 20 && rd16(d) == kSendIndication && rd32(d + 4) == kMagicCookie;
    if (!channel_data && !send_ind) {
      HandOff(0, r);
      return;
    }
    Endpoint key;
    FromSockaddr(r.src, &key.ip, &key.port);
    key.sock = r.from->id;
    auto it = by_client_.find(key);
    Sock* relay = it == by_client_.end() ? nullptr : it->second;
    if (relay == nullptr || relay->expires <= now) {
      Count(kDropNoAllocation);
      return;
    }
    Ip16 peer_ip;
    uint16_t peer_port;
    uint8_t* payload;
    size_t payload_len;
    if (channel_data) {
      if (r.len < 4) {
        Count(kDropMalformed);
        return;
      }
      const uint16_t ch = rd16(d);
      const size_t clen = rd16(d + 2);
      if (4 + clen > r.len) {
        Count(kDropMalformed);
        return;
      }
      auto c = relay->channels.find(ch);
      if (c == relay->channels.end() || c->second.expires <= now) {
        Count(kDropNoChannel);
        return;
      }
      peer_ip = c->second.ip;
      peer_port = c->second.port;
      payload = r.data + 4;
      payload_len = clen;
    } else {
      SendIndication s;
      const SendParse p = ParseSendIndication(d, r.len, &s);
      if (p != SendParse::kOk) {
        Count(p == SendParse::kBadFingerprint ? kDropBadFingerprint : kDropMalformed);
        return;
      }
      std::memcpy(peer_ip.b, s.peer_ip, 16);
      peer_port = s.peer_port;
      payload = const_cast<uint8_t*>(s.data);
      payload_len = s.data_len;
    }
    auto perm = relay->permissions.find(peer_ip);
    if (perm == relay->permissions.end() || perm->second <= now) {
      Count(kDropNoPermission);
      return;
    }
    Outgoing o;
    if (!ToSockaddr(relay->family, peer_ip, peer_port, &o.dst, &o.dst_len)) {
      Count(kDropNoPermission);
      return;
    }
    o.fd = relay->fd;
    o.data = payload;
    o.len = payload_len;
    out_.push_back(o);
    Count(kToPeerPackets);
    Count(kToPeerBytes, payload_len);
  }

  // With mu_ held: a datagram from a peer on a relay (RFC 8656 §10.3 Data indication, §12.6 ChannelData).
  void FromPeer(Received& r, int64_t now) {
    Count(kFromPeerPackets);
    Count(kFromPeerBytes, r.len);
    Sock* relay = r.from;
    if (relay->client_sock == nullptr) {
      HandOff(1, r);
      return;
    }
    if (relay->expires <= now) {
      Count(kDropNoAllocation);
      return;
    }
    Ip16 peer_ip;
    uint16_t peer_port;
    FromSockaddr(r.src, &peer_ip, &peer_port);
    auto perm = relay->permissions.find(peer_ip);
    if (perm == relay->permissions.end() || perm->second <= now) {
      Count(kDropNoPermission);
      return;
    }
    if (r.len > kMaxRelayData) {
      Count(kDropTooBig);
      return;
    }
    Outgoing o;
    auto ch = relay->channel_by_peer.find(Endpoint{peer_ip, peer_port, 0});
    if (ch != relay->channel_by_peer.end() && relay->channels[ch->second].expires > now) {
      o.data = r.data - 4;
      wr16(o.data, ch->second);
      wr16(o.data + 2, static_cast<uint16_t>(r.len));
      o.len = r.len + 4;
    } else {
      uint8_t txid[12];
      const uint64_t a = SplitMix(&rng_), b = SplitMix(&rng_);
      std::memcpy(txid, &a, 8);
      std::memcpy(txid + 8, &b, 4);
      o.data = BuildDataIndication(r.data, r.len, peer_ip.b, peer_port, relay->family == AF_INET6 && !IsV4Mapped(peer_ip), txid, &o.len);
    }
    Sock* c = relay->client_sock;
    if (!ToSockaddr(c->family, relay->client_ip, relay->client_port, &o.dst, &o.dst_len)) {
      Count(kDropNoAllocation);
      return;
    }
    o.fd = c->fd;
    out_.push_back(o);
    Count(kToClientPackets);
    Count(kToClientBytes, r.len);
  }

  // Sends out_ with one sendmmsg per run of datagrams leaving the same socket.
  void Flush() {
    if (out_.empty()) return;
    std::stable_sort(out_.begin(), out_.end(), [](const Outgoing& a, const Outgoing& b) { return a.fd < b.fd; });
    size_t i = 0;
    while (i < out_.size()) {
      size_t j = i;
      while (j < out_.size() && out_[j].fd == out_[i].fd) j++;
      const size_t count = j - i;
      send_msgs_.resize(count);
      send_iovs_.resize(count);
      for (size_t k = 0; k < count; k++) {
        Outgoing& o = out_[i + k];
        send_iovs_[k] = iovec{o.data, o.len};
        mmsghdr& m = send_msgs_[k];
        std::memset(&m, 0, sizeof m);
        m.msg_hdr.msg_name = &o.dst;
        m.msg_hdr.msg_namelen = o.dst_len;
        m.msg_hdr.msg_iov = &send_iovs_[k];
        m.msg_hdr.msg_iovlen = 1;
      }
      size_t done = 0;
      int spins = 0;
      while (done < count) {
        const int sent = sendmmsg(out_[i].fd, &send_msgs_[done], static_cast<unsigned>(count - done), MSG_DONTWAIT);
        if (sent > 0) {
          done += sent;
          continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && spins++ < 3) {
          std::this_thread::yield();
          continue;
        }
        // The first pending datagram failed (ICMP error, no route, buffer full): count it and go on.
        Count(kDropSendFailed);
        done++;
      }
      i = j;
    }
    out_.clear();
  }

  std::mutex mu_;
  std::unordered_map<uint32_t, Sock*> socks_;
  std::unordered_map<Endpoint, Sock*, EndpointHash> by_client_;
  std::vector<Sock*> to_close_;
  uint32_t next_id_ = 0;

  int epfd_ = -1;
  int evfd_ = -1;
  uint8_t* slots_ = nullptr;
  std::thread thread_;
  bool running_ = false;
  std::atomic<bool> stopping_{false};
  Napi::ThreadSafeFunction tsfn_;
  bool has_tsfn_ = false;
  std::atomic<uint64_t> counters_[kCounterCount];
  uint64_t rng_ = 0;

  // Data plane thread only.
  std::vector<Outgoing> out_;
  std::vector<Handoff*> handoffs_;
  std::vector<mmsghdr> send_msgs_;
  std::vector<iovec> send_iovs_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("DataPlane", DataPlane::Init(env));
  InitUdpSend(env, exports);
  InitUdpSteer(env, exports);
  return exports;
}

}  // namespace
}  // namespace rtcedge

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return rtcedge::Init(env, exports); }

NODE_API_MODULE(rtcedge_turn, InitAddon)
