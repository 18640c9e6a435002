// rtcedge DTLS server engine for TURN over DTLS (RFC 7350, RFC 8656 §3.1):
// OpenSSL's DTLS (Node's own OpenSSL 3, whose symbols the node binary
// exports) driven through an in-memory datagram BIO. JavaScript owns the UDP
// socket and calls receive() with each datagram from a client 5-tuple; the
// engine answers with the datagrams to send back (handshake flights,
// HelloVerifyRequest, alerts) and the decrypted application datagrams.
// send() encrypts one application datagram for an established session.
//
// - New 5-tuples go through DTLSv1_listen on a spare SSL object: no state is
//   kept until the client echoes a cookie (HMAC-SHA256 of the 5-tuple key
//   and a 60 s epoch), RFC 6347 §4.2.1.
// - Sessions and handshakes in progress are bounded; handshakes time out,
//   established sessions expire when idle (tick()).
// - Each record the SSL writes is one outgoing datagram (SSL_set_mtu bounds
//   handshake fragments).
// Single-threaded: every method runs on the JavaScript thread.
// The JavaScript surface is described in src/turn/dtls-addon.ts.

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <time.h>

#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include <napi.h>

namespace rtcedge {
namespace {

constexpr size_t kMaxRecord = 16384 + 2048;  // largest plaintext record and then some
constexpr int64_t kCookieEpochMs = 60000;    // cookie secret epoch; cookies of this and the last epoch verify
constexpr size_t kCookieLen = 32;

enum Counter {
  kSessionsOpened, kHandshakesDone, kHandshakesFailed, kHandshakesTimedOut, kIdleClosed,
  kCookiesSent, kDropLimit, kDropNotHandshake, kRecordsIn, kRecordsOut, kSessionsReplaced, kCounterCount
};
const char* const kCounterNames[kCounterCount] = {
  "sessionsOpened", "handshakesDone", "handshakesFailed", "handshakesTimedOut", "idleClosed",
  "cookiesSent", "dropLimit", "dropNotHandshake", "recordsIn", "recordsOut", "sessionsReplaced",
};

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string SslErrors() {
  std::string s;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s.empty() ? "unknown OpenSSL error" : s;
}

// The datagram being fed in and the datagrams written out by the SSL call in
// progress. One per engine: calls never overlap (single thread).
struct DatagramIo {
  const uint8_t* in = nullptr;
  size_t in_len = 0;
  std::vector<std::string> out;
};

int BioWrite(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  auto* io = static_cast<DatagramIo*>(BIO_get_data(b));
  if (len < 0) return -1;
  io->out.emplace_back(data, static_cast<size_t>(len));
  return len;
}

int BioRead(BIO* b, char* buf, int len) {
  BIO_clear_retry_flags(b);
  auto* io = static_cast<DatagramIo*>(BIO_get_data(b));
  if (io->in == nullptr) {
    BIO_set_retry_read(b);
    return -1;
  }
  // A datagram read: the whole of it, truncated to the buffer like recv().
  size_t n = io->in_len < static_cast<size_t>(len) ? io->in_len : static_cast<size_t>(len);
  std::memcpy(buf, io->in, n);
  io->in = nullptr;
  io->in_len = 0;
  return static_cast<int>(n);
}

long BioCtrl(BIO* b, int cmd, long num, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: return 28;  // IPv4 + UDP headers
    default: return 0;  // no peer address, no MTU query, no timers: the engine does those
  }
}

int BioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD* DatagramBioMethod() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rtcedge-dtls-datagram");
    BIO_meth_set_write(bm, BioWrite);
    BIO_meth_set_read(bm, BioRead);
    BIO_meth_set_ctrl(bm, BioCtrl);
    BIO_meth_set_create(bm, BioCreate);
    return bm;
  }();
  return m;
}

struct Session {
  SSL* ssl = nullptr;
  bool established = false;
  int64_t started_ms = 0;
  int64_t last_ms = 0;
};

class DtlsServer : public Napi::ObjectWrap<DtlsServer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "DtlsServer", {
      InstanceMethod<&DtlsServer::Receive>("receive"),
      InstanceMethod<&DtlsServer::Send>("send"),
      InstanceMethod<&DtlsServer::Tick>("tick"),
      InstanceMethod<&DtlsServer::CloseSession>("closeSession"),
      InstanceMethod<&DtlsServer::Stats>("stats"),
      InstanceMethod<&DtlsServer::Destroy>("destroy"),
      InstanceMethod<&DtlsServer::SetCertificate>("setCertificate"),
    });
  }

  // new DtlsServer({ cert, key, psk?, maxSessions, maxHandshakes, idleTimeoutMs, handshakeTimeoutMs, mtu })
  explicit DtlsServer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DtlsServer>(info), record_(kMaxRecord) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      Napi::TypeError::New(env, "DtlsServer(options: object)").ThrowAsJavaScriptException();
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    max_sessions_ = NumberOption(o, "maxSessions", 1000);
    max_handshakes_ = NumberOption(o, "maxHandshakes", 100);
    idle_timeout_ms_ = NumberOption(o, "idleTimeoutMs", 600000);
    handshake_timeout_ms_ = NumberOption(o, "handshakeTimeoutMs", 10000);
    mtu_ = NumberOption(o, "mtu", 1200);
    if (mtu_ < 256 || mtu_ > 65000) {
      Napi::RangeError::New(env, "mtu must be 256..65000").ThrowAsJavaScriptException();
      return;
    }
    if (RAND_bytes(cookie_secret_, sizeof cookie_secret_) != 1) {
      Napi::Error::New(env, "DTLS: no random bytes for the cookie secret").ThrowAsJavaScriptException();
      return;
    }
    std::string err = MakeContext(o);
    if (!err.empty()) Napi::Error::New(env, "DTLS: " + err).ThrowAsJavaScriptException();
  }

  ~DtlsServer() override { Free(); }

 private:
  static int64_t NumberOption(Napi::Object o, const char* name, int64_t dflt) {
    Napi::Value v = o.Get(name);
    return v.IsNumber() ? static_cast<int64_t>(v.As<Napi::Number>().DoubleValue()) : dflt;
  }

  static bool BufferOption(Napi::Object o, const char* name, std::string* out) {
    Napi::Value v = o.Get(name);
    if (v.IsBuffer()) {
      auto b = v.As<Napi::Buffer<char>>();
      out->assign(b.Data(), b.Length());
      return true;
    }
    if (v.IsString()) {
      *out = v.As<Napi::String>().Utf8Value();
      return true;
    }
    return false;
  }

  // Puts the certificate chain and key (PEM) into ctx_ for the sessions made
  // from now on (SSL_new copies them; open sessions keep theirs). Everything is
  // parsed and checked before ctx_ changes, so a bad pair leaves the old one in
  // use. Returns an error text or "".
  std::string UseCertificate(const std::string& cert, const std::string& key) {
    std::vector<X509*> chain;
    BIO* cb = BIO_new_mem_buf(cert.data(), static_cast<int>(cert.size()));
    for (X509* x; (x = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr)) != nullptr;) chain.push_back(x);
    BIO_free(cb);
    ERR_clear_error();  // end of the PEM chain
    BIO* kb = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
    EVP_PKEY* pk = PEM_read_bio_PrivateKey(kb, nullptr, nullptr, nullptr);
    BIO_free(kb);
    std::string err;
    if (chain.empty()) err = "cannot use the certificate: no PEM certificate " + SslErrors();
    else if (pk == nullptr) err = "cannot use the private key: " + SslErrors();
    else if (X509_check_private_key(chain[0], pk) != 1) err = "cannot use the private key: it does not match the certificate " + SslErrors();
    if (err.empty()) {
      bool ok = SSL_CTX_use_certificate(ctx_, chain[0]) == 1 && SSL_CTX_use_PrivateKey(ctx_, pk) == 1 &&
                SSL_CTX_clear_extra_chain_certs(ctx_) == 1;
      for (size_t i = 1; ok && i < chain.size(); i++) {
        if (SSL_CTX_add_extra_chain_cert(ctx_, chain[i]) != 1) ok = false;
        else chain[i] = nullptr;  // owned by ctx_ now
      }
      if (!ok) err = "cannot use the certificate: " + SslErrors();
    }
    for (X509* x : chain) X509_free(x);
    EVP_PKEY_free(pk);
    return err;
  }

  // setCertificate(cert, key): PEM Buffers or strings; new sessions present them.
  Napi::Value SetCertificate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ctx_ == nullptr) {
      Napi::Error::New(env, "DTLS: engine destroyed").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object o = Napi::Object::New(env);
    if (info.Length() >= 2) {
      o.Set("cert", info[0]);
      o.Set("key", info[1]);
    }
    std::string cert, key;
    if (!BufferOption(o, "cert", &cert) || !BufferOption(o, "key", &key)) {
      Napi::TypeError::New(env, "setCertificate(cert, key): PEM Buffers or strings").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string err = UseCertificate(cert, key);
    if (!err.empty()) Napi::Error::New(env, "DTLS: " + err).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // SSL_CTX for DTLS 1.2 with the certificate chain and key (PEM) and, when
  // given, PSK identities (for PSK-only clients). Returns an error text or "".
  std::string MakeContext(Napi::Object o) {
    std::string cert, key;
    if (!BufferOption(o, "cert", &cert) || !BufferOption(o, "key", &key)) return "cert and key (PEM) are required";
    ctx_ = SSL_CTX_new(DTLS_server_method());
    if (ctx_ == nullptr) return SslErrors();
    SSL_CTX_set_app_data(ctx_, this);
    SSL_CTX_set_min_proto_version(ctx_, DTLS1_2_VERSION);
    SSL_CTX_set_options(ctx_, SSL_OP_NO_QUERY_MTU | SSL_OP_COOKIE_EXCHANGE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx_, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_cookie_generate_cb(ctx_, GenerateCookie);
    SSL_CTX_set_cookie_verify_cb(ctx_, VerifyCookie);

    std::string err = UseCertificate(cert, key);
    if (!err.empty()) return err;

    Napi::Value psk = o.Get("psk");
    if (psk.IsArray()) {
      Napi::Array a = psk.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); i++) {
        Napi::Value e = a.Get(i);
        if (!e.IsObject()) return "psk entries must be { identity, key }";
        Napi::Object eo = e.As<Napi::Object>();
        std::string id, k;
        if (!BufferOption(eo, "identity", &id) || !BufferOption(eo, "key", &k) || k.empty() || k.size() > PSK_MAX_PSK_LEN) {
          return "psk entries must be { identity, key (1-512 bytes) }";
        }
        psk_[id] = k;
      }
      if (!psk_.empty()) {
        SSL_CTX_set_psk_server_callback(ctx_, PskServer);
        if (SSL_CTX_set_cipher_list(ctx_, "DEFAULT:PSK:!aNULL") != 1) return "cannot enable PSK ciphers: " + SslErrors();
      }
    }
    return "";
  }

  static DtlsServer* Of(SSL* ssl) { return static_cast<DtlsServer*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl))); }

  void CookieFor(int64_t epoch, unsigned char* out) const {
    std::string msg = current_peer_ + "|" + std::to_string(epoch);
    unsigned int len = kCookieLen;
    HMAC(EVP_sha256(), cookie_secret_, sizeof cookie_secret_, reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  }

  static int GenerateCookie(SSL* ssl, unsigned char* cookie, unsigned int* len) {
    DtlsServer* self = Of(ssl);
    self->CookieFor(NowMs() / kCookieEpochMs, cookie);
    *len = kCookieLen;
    self->counters_[kCookiesSent]++;
    return 1;
  }

  static int VerifyCookie(SSL* ssl, const unsigned char* cookie, unsigned int len) {
    DtlsServer* self = Of(ssl);
    if (len != kCookieLen) return 0;
    const int64_t epoch = NowMs() / kCookieEpochMs;
    unsigned char want[kCookieLen];
    for (int64_t e = epoch; e >= epoch - 1; e--) {
      self->CookieFor(e, want);
      if (CRYPTO_memcmp(want, cookie, kCookieLen) == 0) return 1;
    }
    return 0;
  }

  static unsigned int PskServer(SSL* ssl, const char* identity, unsigned char* psk, unsigned int max_len) {
    DtlsServer* self = Of(ssl);
    auto it = self->psk_.find(identity == nullptr ? "" : identity);
    if (it == self->psk_.end() || it->second.size() > max_len) return 0;
    std::memcpy(psk, it->second.data(), it->second.size());
    return static_cast<unsigned int>(it->second.size());
  }

  SSL* NewSsl() {
    SSL* ssl = SSL_new(ctx_);
    if (ssl == nullptr) return nullptr;
    BIO* b = BIO_new(DatagramBioMethod());
    if (b == nullptr) {
      SSL_free(ssl);
      return nullptr;
    }
    BIO_set_data(b, &io_);
    SSL_set_bio(ssl, b, b);
    SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(ssl, static_cast<long>(mtu_));
    SSL_set_accept_state(ssl);
    return ssl;
  }

  void Feed(const uint8_t* data, size_t len) {
    io_.in = data;
    io_.in_len = len;
  }

  Napi::Array TakeOut(Napi::Env env) {
    Napi::Array a = Napi::Array::New(env, io_.out.size());
    for (size_t i = 0; i < io_.out.size(); i++) a.Set(i, Napi::Buffer<char>::Copy(env, io_.out[i].data(), io_.out[i].size()));
    counters_[kRecordsOut] += io_.out.size();
    io_.out.clear();
    return a;
  }

  void FreeSession(const std::string& key) {
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return;
    if (!it->second.established) handshaking_--;
    SSL_free(it->second.ssl);
    sessions_.erase(it);
  }

  // Drives a session after `io_.in` was set: finishes the handshake or reads
  // application records into `data`. Returns "established", "closed" or "".
  const char* Drive(const std::string& key, Session& s, std::vector<std::string>* data) {
    const char* event = "";
    if (!s.established) {
      ERR_clear_error();
      int r = SSL_do_handshake(s.ssl);
      if (r == 1) {
        s.established = true;
        handshaking_--;
        counters_[kHandshakesDone]++;
        event = "established";
      } else {
        int e = SSL_get_error(s.ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return "";
        counters_[kHandshakesFailed]++;
        last_error_ = SslErrors();
        FreeSession(key);
        return "closed";
      }
    }
    for (;;) {
      ERR_clear_error();
      int n = SSL_read(s.ssl, record_.data(), static_cast<int>(record_.size()));
      if (n > 0) {
        counters_[kRecordsIn]++;
        data->emplace_back(record_.data(), static_cast<size_t>(n));
        continue;
      }
      int e = SSL_get_error(s.ssl, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
      if (e == SSL_ERROR_ZERO_RETURN) SSL_shutdown(s.ssl);  // close_notify: answer it
      else last_error_ = SslErrors();
      FreeSession(key);
      return "closed";
    }
    return event;
  }

  // A ClientHello record of epoch 0 that starts a handshake (record type 22, handshake type 1).
  static bool IsInitialClientHello(const uint8_t* d, size_t len) {
    return len >= 25 && d[0] == 22 && d[3] == 0 && d[4] == 0 && d[13] == 1;
  }

  // The stateless cookie exchange for `key` (DTLSv1_listen on the spare SSL object); when the cookie
  // comes back the 5-tuple gets a session (replacing its old one when `replace`) and the handshake
  // goes on. Sets `event` ("replaced" or the handshake's). False only when no SSL object can be made.
  bool Accept(const std::string& key, const uint8_t* d, size_t len, int64_t now, bool replace, std::vector<std::string>* data, const char** event) {
    if (listener_ == nullptr) listener_ = NewSsl();
    if (listener_ == nullptr) return false;
    current_peer_ = key;
    Feed(d, len);
    BIO_ADDR* client = BIO_ADDR_new();
    ERR_clear_error();
    int r = DTLSv1_listen(listener_, client);
    BIO_ADDR_free(client);
    if (r < 0) {
      last_error_ = SslErrors();  // listener SSL unusable: make a fresh one next time
      SSL_free(listener_);
      listener_ = nullptr;
    }
    if (r <= 0) return true;  // HelloVerifyRequest sent, or the datagram dropped
    if (replace) {
      counters_[kSessionsReplaced]++;
      FreeSession(key);
    }
    Session s;
    s.ssl = listener_;
    listener_ = nullptr;
    s.started_ms = s.last_ms = now;
    handshaking_++;
    counters_[kSessionsOpened]++;
    auto ins = sessions_.emplace(key, s);
    const char* e = Drive(key, ins.first->second, data);
    *event = replace ? "replaced" : e;
    return true;
  }

  // receive(key: string, datagram: Buffer) -> { out: Buffer[], data: Buffer[], event: '' | 'established' | 'closed' | 'replaced' }
  Napi::Value Receive(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (ctx_ == nullptr) return env.Undefined();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBuffer()) {
      Napi::TypeError::New(env, "receive(key: string, datagram: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string key = info[0].As<Napi::String>().Utf8Value();
    auto buf = info[1].As<Napi::Buffer<uint8_t>>();
    const int64_t now = NowMs();
    std::vector<std::string> data;
    const char* event = "";
    auto it = sessions_.find(key);
    const bool hello = IsInitialClientHello(buf.Data(), buf.Length());
    if (it != sessions_.end() && !(it->second.established && hello)) {
      it->second.last_ms = now;
      Feed(buf.Data(), buf.Length());
      event = Drive(key, it->second, &data);
    } else if (it != sessions_.end()) {
      // RFC 6347 §4.2.8: an epoch-0 ClientHello on an established association is a new client on the
      // same 5-tuple (restarted, or a NAT reusing the port). The old association stays until the new
      // one has proven reachability with the cookie exchange; then it is replaced.
      if (handshaking_ >= max_handshakes_) counters_[kDropLimit]++;
      else if (!Accept(key, buf.Data(), buf.Length(), now, true, &data, &event)) return Throw(env, "DTLS: cannot create an SSL object: " + SslErrors());
    } else if (buf.Length() < 13 || buf.Data()[0] != 22) {
      counters_[kDropNotHandshake]++;  // only a handshake record can start a session
    } else if (sessions_.size() >= static_cast<size_t>(max_sessions_) || handshaking_ >= max_handshakes_) {
      counters_[kDropLimit]++;
    } else if (!Accept(key, buf.Data(), buf.Length(), now, false, &data, &event)) {
      return Throw(env, "DTLS: cannot create an SSL object: " + SslErrors());
    }
    io_.in = nullptr;
    Napi::Object res = Napi::Object::New(env);
    res.Set("out", TakeOut(env));
    Napi::Array d = Napi::Array::New(env, data.size());
    for (size_t i = 0; i < data.size(); i++) d.Set(i, Napi::Buffer<char>::Copy(env, data[i].data(), data[i].size()));
    res.Set("data", d);
    res.Set("event", Napi::String::New(env, event));
    return res;
  }

  // send(key: string, data: Buffer) -> Buffer[] (the encrypted datagrams), or null without an established session.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBuffer()) {
      Napi::TypeError::New(env, "send(key: string, data: Buffer)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto it = sessions_.find(info[0].As<Napi::String>().Utf8Value());
    if (it == sessions_.end() || !it->second.established) return env.Null();
    auto buf = info[1].As<Napi::Buffer<uint8_t>>();
    if (buf.Length() == 0 || buf.Length() > 16384) return Throw(env, "DTLS: send needs 1-16384 bytes", true);
    ERR_clear_error();
    int n = SSL_write(it->second.ssl, buf.Data(), static_cast<int>(buf.Length()));
    if (n <= 0) {
      last_error_ = SslErrors();
      io_.out.clear();
      return env.Null();
    }
    return TakeOut(env);
  }

  // tick() -> { out: Array<[key, Buffer]>, closed: string[] }: handshake retransmissions (RFC 6347 §4.2.4),
  // handshake timeouts and idle expiry.
  Napi::Value Tick(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int64_t now = NowMs();
    Napi::Array out = Napi::Array::New(env);
    Napi::Array closed = Napi::Array::New(env);
    std::vector<std::string> expired;
    for (auto& [key, s] : sessions_) {
      if (!s.established) {
        if (now - s.started_ms > handshake_timeout_ms_) {
          counters_[kHandshakesTimedOut]++;
          expired.push_back(key);
          continue;
        }
        if (DTLSv1_handle_timeout(s.ssl) < 0) {
          counters_[kHandshakesFailed]++;
          expired.push_back(key);
          continue;
        }
      } else if (now - s.last_ms > idle_timeout_ms_) {
        counters_[kIdleClosed]++;
        SSL_shutdown(s.ssl);  // close_notify
        expired.push_back(key);
      }
      if (!io_.out.empty()) {
        Napi::Array datagrams = TakeOut(env);
        for (uint32_t i = 0; i < datagrams.Length(); i++) {
          Napi::Array pair = Napi::Array::New(env, 2);
          pair.Set(0u, Napi::String::New(env, key));
          pair.Set(1u, datagrams.Get(i));
          out.Set(out.Length(), pair);
        }
      }
    }
    for (const auto& key : expired) {
      FreeSession(key);
      closed.Set(closed.Length(), Napi::String::New(env, key));
    }
    ERR_clear_error();
    Napi::Object res = Napi::Object::New(env);
    res.Set("out", out);
    res.Set("closed", closed);
    return res;
  }

  // closeSession(key) -> Buffer[] (close_notify), or null when there is no such session.
  Napi::Value CloseSession(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) return Throw(env, "closeSession(key: string)", true);
    std::string key = info[0].As<Napi::String>().Utf8Value();
    auto it = sessions_.find(key);
    if (it == sessions_.end()) return env.Null();
    if (it->second.established) SSL_shutdown(it->second.ssl);
    FreeSession(key);
    ERR_clear_error();
    return TakeOut(env);
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    for (int i = 0; i < kCounterCount; i++) o.Set(kCounterNames[i], Napi::Number::New(env, static_cast<double>(counters_[i])));
    o.Set("sessions", Napi::Number::New(env, static_cast<double>(sessions_.size())));
    o.Set("handshaking", Napi::Number::New(env, static_cast<double>(handshaking_)));
    o.Set("lastError", Napi::String::New(env, last_error_));
    return o;
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  void Free() {
    for (auto& [key, s] : sessions_) SSL_free(s.ssl);
    sessions_.clear();
    handshaking_ = 0;
    if (listener_ != nullptr) SSL_free(listener_);
    listener_ = nullptr;
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ctx_ = nullptr;
    io_.out.clear();
  }

  Napi::Value Throw(Napi::Env env, const std::string& msg, bool type = false) {
    if (type) Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
    else Napi::Error::New(env, msg).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* listener_ = nullptr;  // spare SSL for DTLSv1_listen on new 5-tuples
  DatagramIo io_;
  std::unordered_map<std::string, Session> sessions_;
  std::unordered_map<std::string, std::string> psk_;
  std::string current_peer_;
  std::string last_error_;
  std::vector<char> record_;
  unsigned char cookie_secret_[32];
  uint64_t counters_[kCounterCount] = {};
  int64_t handshaking_ = 0;
  int64_t max_sessions_ = 1000;
  int64_t max_handshakes_ = 100;
  int64_t idle_timeout_ms_ = 600000;
  int64_t handshake_timeout_ms_ = 10000;
  int64_t mtu_ = 1200;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("DtlsServer", DtlsServer::Init(env));
  exports.Set("openssl", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
  return exports;
}

}  // namespace
}  // namespace rtcedge

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return rtcedge::Init(env, exports); }

NODE_API_MODULE(rtcedge_dtls, InitAddon)
