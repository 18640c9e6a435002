// UDP datagrams steered to their Call-ID's SIP worker by the kernel: SO_REUSEPORT sockets and
// an eBPF reuseport program; see udp_steer.cc.
#pragma once

#include <napi.h>

namespace rtcedge {

// Bytes of a datagram's payload the Call-ID program scans at most; past it the kernel picks the socket.
constexpr unsigned kCallIdScanBytes = 2048;

// Adds reuseportUdpSocket, loadCallIdProgram, attachReuseportProgram, runCallIdProgram and
// closeDescriptor to the addon's exports.
void InitUdpSteer(Napi::Env env, Napi::Object exports);

}  // namespace rtcedge
