// Batched sends on a UDP socket owned by node:dgram (SIP over UDP); see udp_send.cc.
#pragma once

#include <napi.h>

namespace rtcedge {

// Most datagrams one sendBatch call takes (the JavaScript queue of a socket holds no more).
constexpr unsigned kMaxUdpBatch = 64;

// Adds sockaddrFor(ip), sendBatch(...) and maxUdpBatch to the addon's exports.
void InitUdpSend(Napi::Env env, Napi::Object exports);

}  // namespace rtcedge
