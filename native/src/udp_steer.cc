// UDP datagrams steered to their Call-ID's SIP worker by the kernel (Linux only).
//
// One SO_REUSEPORT socket per worker joins a reuseport group; the primary binds them in worker
// order, so a socket's index in the group is its worker's index. An eBPF program of type
// BPF_PROG_TYPE_SOCKET_FILTER attached to the group (SO_ATTACH_REUSEPORT_EBPF) runs for each
// datagram with skb->data at the UDP payload (net/core/sock_reuseport.c, run_bpf_filter) and
// returns the index of the socket that gets it: the FNV-1a hash of the Call-ID value modulo the
// number of workers, as src/transport/call-id-owner.ts computes it. Where the program gives up
// (no Call-ID within kCallIdScanBytes, keepalives, a value cut by the scan bound) it returns
// 0xffffffff, an index past the group, and the kernel picks by its 4-tuple hash; the transport's
// hand-off over the worker mesh then carries the datagram, as it does without steering.
//
// The program is assembled here from linux/bpf.h opcodes (no compiler, no libbpf): it reads the
// payload a byte at a time with BPF_LD|BPF_IND (legacy packet loads, allowed in socket filters,
// bounds-checked by the kernel at run time) in bounded loops (kernel 5.3 or later).
#include "udp_steer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

namespace rtcedge {
namespace {

constexpr int32_t kGiveUp = -1;  // 0xffffffff: past any group, the kernel's hash picks
constexpr uint32_t kFnvOffset = 0x811c9dc5;
constexpr int32_t kFnvPrime = 0x01000193;

// A tiny assembler: instructions with jumps to labels, resolved by Finish().
class Program {
 public:
  int NewLabel() {
    labels_.push_back(-1);
    return static_cast<int>(labels_.size()) - 1;
  }
  void Bind(int label) { labels_[label] = static_cast<int>(insns_.size()); }

  void Mov64Reg(int dst, int src) { Emit(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0); }
  void Mov64Imm(int dst, int32_t imm) { Emit(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
  void Mov32Imm(int dst, int32_t imm) { Emit(BPF_ALU | BPF_MOV | BPF_K, dst, 0, 0, imm); }
  void Mov32Reg(int dst, int src) { Emit(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
  void Alu64Imm(int op, int dst, int32_t imm) { Emit(BPF_ALU64 | op | BPF_K, dst, 0, 0, imm); }
  void Alu32Imm(int op, int dst, int32_t imm) { Emit(BPF_ALU | op | BPF_K, dst, 0, 0, imm); }
  void Alu32Reg(int op, int dst, int src) { Emit(BPF_ALU | op | BPF_X, dst, src, 0, 0); }
  // dst = *(u32 *)(src + off)
  void LoadWord(int dst, int src, int16_t off) { Emit(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0); }
  // r0 = payload[src + imm] (one byte); r1-r5 are clobbered; r6 must hold the context.
  void LoadByteAt(int src, int32_t imm) { Emit(BPF_LD | BPF_IND | BPF_B, 0, src, 0, imm); }
  void JumpImm(int op, int dst, int32_t imm, int label) { EmitJump(BPF_JMP | op | BPF_K, dst, 0, imm, label); }
  void JumpReg(int op, int dst, int src, int label) { EmitJump(BPF_JMP | op | BPF_X, dst, src, 0, label); }
  void Jump(int label) { EmitJump(BPF_JMP | BPF_JA, 0, 0, 0, label); }
  void Exit() { Emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

  // The instructions with every jump resolved; empty when a label was never bound.
  std::vector<bpf_insn> Finish() {
    for (const auto& f : fixups_) {
      const int target = labels_[f.label];
      if (target < 0) return {};
      insns_[f.at].off = static_cast<int16_t>(target - f.at - 1);
    }
    return insns_;
  }

 private:
  struct Fixup {
    size_t at;
    int label;
  };
  void Emit(int code, int dst, int src, int16_t off, int32_t imm) {
    bpf_insn insn;
    std::memset(&insn, 0, sizeof insn);
    insn.code = static_cast<uint8_t>(code);
    insn.dst_reg = static_cast<uint8_t>(dst);
    insn.src_reg = static_cast<uint8_t>(src);
    insn.off = off;
    insn.imm = imm;
    insns_.push_back(insn);
  }
  void EmitJump(int code, int dst, int src, int32_t imm, int label) {
    fixups_.push_back({insns_.size(), label});
    Emit(code, dst, src, 0, imm);
  }
  std::vector<bpf_insn> insns_;
  std::vector<int> labels_;
  std::vector<Fixup> fixups_;
};

enum Reg { R0 = 0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };
constexpr int kCR = 0x0d, kLF = 0x0a, kSP = 0x20, kHT = 0x09, kColon = 0x3a;

// The Call-ID program for `workers` sockets (see the file comment). Registers: r6 the context,
// r7 the scan position, r8 the hash, r9 the scan end (payload length capped at kCallIdScanBytes).
std::vector<bpf_insn> CallIdProgram(uint32_t workers) {
  Program p;
  const int skipCrlf = p.NewLabel(), skipCrlfNext = p.NewLabel(), skipLine = p.NewLabel(), lineStart = p.NewLabel(),
            compact = p.NewLabel(), ws = p.NewLabel(), wsNext = p.NewLabel(), valueStart = p.NewLabel(), value = p.NewLabel(),
            valueLf = p.NewLabel(), valueEnd = p.NewLabel(), done = p.NewLabel(), giveUp = p.NewLabel(), capped = p.NewLabel();
  p.Mov64Reg(R6, R1);
  p.LoadWord(R9, R6, offsetof(__sk_buff, len));
  p.JumpImm(BPF_JLE, R9, kCallIdScanBytes, capped);
  p.Mov64Imm(R9, kCallIdScanBytes);
  p.Bind(capped);
  p.Mov64Imm(R7, 0);
  // Leading CRLFs (keepalives before a message), then the start line.
  p.Bind(skipCrlf);
  p.JumpReg(BPF_JGE, R7, R9, giveUp);
  p.LoadByteAt(R7, 0);
  p.JumpImm(BPF_JEQ, R0, kCR, skipCrlfNext);
  p.JumpImm(BPF_JNE, R0, kLF, skipLine);
  p.Bind(skipCrlfNext);
  p.Alu64Imm(BPF_ADD, R7, 1);
  p.Jump(skipCrlf);
  // To the byte after the next LF.
  p.Bind(skipLine);
  p.JumpReg(BPF_JGE, R7, R9, giveUp);
  p.LoadByteAt(R7, 0);
  p.Alu64Imm(BPF_ADD, R7, 1);
  p.JumpImm(BPF_JNE, R0, kLF, skipLine);
  // A header line: the empty line ends the headers; `i` or `call-id` (any case) may start a Call-ID.
  p.Bind(lineStart);
  p.JumpReg(BPF_JGE, R7, R9, giveUp);
  p.LoadByteAt(R7, 0);
  p.JumpImm(BPF_JEQ, R0, kCR, giveUp);
  p.JumpImm(BPF_JEQ, R0, kLF, giveUp);
  p.Alu64Imm(BPF_OR, R0, 0x20);
  p.JumpImm(BPF_JEQ, R0, 'i', compact);
  p.JumpImm(BPF_JNE, R0, 'c', skipLine);
  p.Mov64Reg(R1, R7);
  p.Alu64Imm(BPF_ADD, R1, 7);
  p.JumpReg(BPF_JGT, R1, R9, skipLine);
  const char* rest = "all-id";
  for (int k = 0; k < 6; k++) {
    p.LoadByteAt(R7, k + 1);
    p.Alu64Imm(BPF_OR, R0, 0x20);
    p.JumpImm(BPF_JNE, R0, rest[k], skipLine);
  }
  p.Alu64Imm(BPF_ADD, R7, 7);
  p.Jump(ws);
  // `i`: the compact form when white space or `:` follows.
  p.Bind(compact);
  p.Alu64Imm(BPF_ADD, R7, 1);
  p.JumpReg(BPF_JGE, R7, R9, ws);
  p.LoadByteAt(R7, 0);
  p.JumpImm(BPF_JEQ, R0, kSP, ws);
  p.JumpImm(BPF_JEQ, R0, kHT, ws);
  p.JumpImm(BPF_JNE, R0, kColon, skipLine);
  // White space, then the colon.
  p.Bind(ws);
  p.JumpReg(BPF_JGE, R7, R9, giveUp);
  p.LoadByteAt(R7, 0);
  p.JumpImm(BPF_JEQ, R0, kSP, wsNext);
  p.JumpImm(BPF_JEQ, R0, kHT, wsNext);
  p.JumpImm(BPF_JEQ, R0, kColon, valueStart);
  p.Jump(skipLine);
  p.Bind(wsNext);
  p.Alu64Imm(BPF_ADD, R7, 1);
  p.Jump(ws);
  // FNV-1a over the value without SP, HT, CR; a LF followed by SP or HT folds, any other ends it.
  p.Bind(valueStart);
  p.Alu64Imm(BPF_ADD, R7, 1);
  p.Mov32Imm(R8, static_cast<int32_t>(kFnvOffset));
  p.Bind(value);
  p.JumpReg(BPF_JGE, R7, R9, valueEnd);
  p.LoadByteAt(R7, 0);
  p.Alu64Imm(BPF_ADD, R7, 1);
  p.JumpImm(BPF_JEQ, R0, kLF, valueLf);
  p.JumpImm(BPF_JEQ, R0, kCR, value);
  p.JumpImm(BPF_JEQ, R0, kSP, value);
  p.JumpImm(BPF_JEQ, R0, kHT, value);
  p.Alu32Reg(BPF_XOR, R8, R0);
  p.Alu32Imm(BPF_MUL, R8, kFnvPrime);
  p.Jump(value);
  p.Bind(valueLf);
  p.JumpReg(BPF_JGE, R7, R9, valueEnd);
  p.LoadByteAt(R7, 0);
  p.JumpImm(BPF_JEQ, R0, kSP, value);
  p.JumpImm(BPF_JEQ, R0, kHT, value);
  p.Jump(done);
  // The scan end: the value ends with the payload, or the scan bound cut it (give up).
  p.Bind(valueEnd);
  p.LoadWord(R1, R6, offsetof(__sk_buff, len));
  p.JumpReg(BPF_JGT, R1, R7, giveUp);
  p.Bind(done);
  p.Mov32Reg(R0, R8);
  p.Alu32Imm(BPF_MOD, R0, static_cast<int32_t>(workers));
  p.Exit();
  p.Bind(giveUp);
  p.Mov32Imm(R0, kGiveUp);
  p.Exit();
  return p.Finish();
}

long Bpf(int cmd, bpf_attr* attr) { return syscall(__NR_bpf, cmd, attr, sizeof *attr); }

std::string Errno(const char* what, int err) { return std::string(what) + ": " + strerror(err) + " (errno " + std::to_string(err) + ")"; }

Napi::Value Fail(Napi::Env env, const std::string& message, int err) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// Binds a new UDP socket of `family` to `sa`, SO_REUSEPORT when `reusePort`, IPV6_V6ONLY as `v6only`;
// its descriptor, or -1 with errno set (nothing left open).
int BindUdp(int family, const sockaddr_storage& sa, socklen_t len, bool reusePort, int v6only) {
  const int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  const int one = 1;
  if ((reusePort && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) ||
      bind(fd, reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// reuseportUdpSocket(ip, port, ipv6Only, firstOfGroup): a non-blocking UDP socket with SO_REUSEPORT
// bound to ip:port (IPV6_V6ONLY for an IPv6 address when ipv6Only); returns its descriptor. With
// firstOfGroup and a port other than 0, the port must be free first (a socket without SO_REUSEPORT
// binds it, then closes), so a group another process made (another server as the same user) is never
// joined. Throws an Error (with `errno`) when the socket cannot be made or bound (EADDRINUSE,
// EADDRNOTAVAIL...), a TypeError on arguments of the wrong type.
Napi::Value ReuseportUdpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsBoolean() || !info[3].IsBoolean()) {
    Napi::TypeError::New(env, "reuseportUdpSocket(ip, port, ipv6Only, firstOfGroup)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string ip = info[0].As<Napi::String>().Utf8Value();
  const int port = info[1].As<Napi::Number>().Int32Value();
  if (port < 0 || port > 65535) {
    Napi::TypeError::New(env, "reuseportUdpSocket: port out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof ss);
  socklen_t len;
  int family;
  if (inet_pton(AF_INET, ip.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    family = AF_INET;
    reinterpret_cast<sockaddr_in*>(&ss)->sin_family = AF_INET;
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) == 1) {
    family = AF_INET6;
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_family = AF_INET6;
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
  } else {
    Napi::TypeError::New(env, "reuseportUdpSocket: not an IP address: " + ip).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int v6only = info[2].As<Napi::Boolean>().Value() ? 1 : 0;
  if (info[3].As<Napi::Boolean>().Value() && port != 0) {
    const int probe = BindUdp(family, ss, len, false, v6only);
    if (probe < 0) return Fail(env, Errno("bind", errno), errno);
    close(probe);
  }
  const int fd = BindUdp(family, ss, len, true, v6only);
  if (fd < 0) return Fail(env, Errno("bind", errno), errno);
  return Napi::Number::New(env, fd);
}

// loadCallIdProgram(workers): loads the Call-ID program for `workers` (1..1024) sockets with bpf(2)
// and returns its descriptor. Throws an Error (with `errno`, and the verifier's log when it refused
// the program) when the kernel will not load it: EPERM without CAP_BPF, ENOSYS/EINVAL on old kernels.
Napi::Value LoadCallIdProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "loadCallIdProgram(workers)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int64_t workers = info[0].As<Napi::Number>().Int64Value();
  if (workers < 1 || workers > 1024) {
    Napi::TypeError::New(env, "loadCallIdProgram: workers must be 1..1024").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::vector<bpf_insn> insns = CallIdProgram(static_cast<uint32_t>(workers));
  if (insns.empty()) return Fail(env, "loadCallIdProgram: unbound label", EINVAL);
  static const char license[] = "GPL";
  std::vector<char> log(64 * 1024);
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = reinterpret_cast<uint64_t>(insns.data());
  attr.insn_cnt = static_cast<uint32_t>(insns.size());
  attr.license = reinterpret_cast<uint64_t>(license);
  std::strncpy(attr.prog_name, "sip_call_id", sizeof attr.prog_name - 1);
  int fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  if (fd < 0 && errno == EACCES) {
    // Refused by the verifier: load again with its log, for the error message.
    attr.log_level = 1;
    attr.log_buf = reinterpret_cast<uint64_t>(log.data());
    attr.log_size = static_cast<uint32_t>(log.size());
    fd = static_cast<int>(Bpf(BPF_PROG_LOAD, &attr));
  }
  if (fd < 0) {
    const int err = errno;
    std::string message = Errno("bpf(BPF_PROG_LOAD)", err);
    log.back() = 0;
    if (log[0] != 0) message += "; verifier: " + std::string(log.data());
    return Fail(env, message, err);
  }
  return Napi::Number::New(env, fd);
}

// attachReuseportProgram(socketFd, programFd): attaches the program to the reuseport group of the
// socket (SO_ATTACH_REUSEPORT_EBPF; it replaces the group's previous program). Throws an Error (with
// `errno`) when the kernel refuses.
Napi::Value AttachReuseportProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "attachReuseportProgram(socketFd, programFd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int sock = info[0].As<Napi::Number>().Int32Value();
  const int prog = info[1].As<Napi::Number>().Int32Value();
  if (setsockopt(sock, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof prog) != 0) {
    return Fail(env, Errno("setsockopt(SO_ATTACH_REUSEPORT_EBPF)", errno), errno);
  }
  return env.Undefined();
}

// runCallIdProgram(programFd, payload): the program's answer for a UDP payload (BPF_PROG_TEST_RUN
// in the kernel: the socket index, 0xffffffff when it gives up). Throws an Error (with `errno`)
// when the kernel refuses the run.
Napi::Value RunCallIdProgram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBuffer()) {
    Napi::TypeError::New(env, "runCallIdProgram(programFd, payload)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int prog = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> payload = info[1].As<Napi::Buffer<uint8_t>>();
  // A test run of a socket filter starts at the network header: an Ethernet header (14 bytes,
  // EtherType 0) comes first and is pulled, so the program sees the payload from its first byte.
  std::vector<uint8_t> frame(14 + payload.Length(), 0);
  if (payload.Length() > 0) std::memcpy(frame.data() + 14, payload.Data(), payload.Length());
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.test.prog_fd = static_cast<uint32_t>(prog);
  attr.test.data_in = reinterpret_cast<uint64_t>(frame.data());
  attr.test.data_size_in = static_cast<uint32_t>(frame.size());
  attr.test.repeat = 1;
  if (Bpf(BPF_PROG_TEST_RUN, &attr) != 0) return Fail(env, Errno("bpf(BPF_PROG_TEST_RUN)", errno), errno);
  return Napi::Number::New(env, attr.test.retval);
}

// closeDescriptor(fd): closes a descriptor this addon returned (a program once attached).
Napi::Value CloseDescriptor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "closeDescriptor(fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  close(info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

}  // namespace

void InitUdpSteer(Napi::Env env, Napi::Object exports) {
  exports.Set("reuseportUdpSocket", Napi::Function::New(env, ReuseportUdpSocket, "reuseportUdpSocket"));
  exports.Set("loadCallIdProgram", Napi::Function::New(env, LoadCallIdProgram, "loadCallIdProgram"));
  exports.Set("attachReuseportProgram", Napi::Function::New(env, AttachReuseportProgram, "attachReuseportProgram"));
  exports.Set("runCallIdProgram", Napi::Function::New(env, RunCallIdProgram, "runCallIdProgram"));
  exports.Set("closeDescriptor", Napi::Function::New(env, CloseDescriptor, "closeDescriptor"));
  exports.Set("callIdScanBytes", Napi::Number::New(env, kCallIdScanBytes));
}

}  // namespace rtcedge
