// The few STUN/TURN message shapes the data plane reads and writes without
// the TypeScript codec: Send indications (RFC 8656 §10.2), Data indications
// (RFC 8656 §10.3), ChannelData (RFC 8656 §12.4) and FINGERPRINT (RFC 8489
// §14.7). Addresses are 16-byte IPv6 form; IPv4 is stored IPv4-mapped.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rtcedge {

constexpr uint32_t kMagicCookie = 0x2112A442;
constexpr uint16_t kSendIndication = 0x0016;
constexpr uint16_t kDataIndication = 0x0017;
constexpr uint16_t kAttrXorPeerAddress = 0x0012;
constexpr uint16_t kAttrData = 0x0013;
constexpr uint16_t kAttrFingerprint = 0x8028;
/** Bytes a Data indication puts before the application data: header 20, XOR-PEER-ADDRESS 12 (IPv4) or 24 (IPv6), DATA header 4. */
constexpr size_t kDataIndicationHeadV4 = 36;
constexpr size_t kDataIndicationHeadV6 = 48;

inline uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t rd32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) | (static_cast<uint32_t>(p[2]) << 8) | p[3];
}
inline void wr16(uint8_t* p, uint16_t v) { p[0] = static_cast<uint8_t>(v >> 8); p[1] = static_cast<uint8_t>(v); }
inline void wr32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24); p[1] = static_cast<uint8_t>(v >> 16); p[2] = static_cast<uint8_t>(v >> 8); p[3] = static_cast<uint8_t>(v);
}

/** CRC-32 (ISO 3309 / zlib polynomial) of `len` bytes. */
uint32_t Crc32(const uint8_t* data, size_t len);

/** Outcome of ParseSendIndication. */
enum class SendParse { kOk, kMalformed, kBadFingerprint };

/** A parsed Send indication: peer address (IPv6 form) and a view of the DATA value. */
struct SendIndication {
  uint8_t peer_ip[16];
  uint16_t peer_port;
  bool peer_v6;
  const uint8_t* data;
  size_t data_len;
};

/**
 * Parses a datagram already known to start with the Send indication type and
 * the magic cookie. Requires a length field that is a multiple of 4 and fits
 * the datagram, well-formed attributes, one XOR-PEER-ADDRESS and one DATA
 * (the first of each counts, RFC 8489 §14); a FINGERPRINT must be last and
 * match, else kBadFingerprint (RFC 8489 §7.3: discard).
 */
SendParse ParseSendIndication(const uint8_t* msg, size_t len, SendIndication* out);

/**
 * Writes a Data indication (RFC 8656 §10.3) whose DATA value is the `data_len`
 * bytes already at `data`: the header and XOR-PEER-ADDRESS go into the
 * kDataIndicationHead* bytes before `data`, zero padding (up to 3 bytes) after
 * it. `txid` is the 12-byte transaction id. Returns the start of the message;
 * `*out_len` gets its length.
 */
uint8_t* BuildDataIndication(uint8_t* data, size_t data_len, const uint8_t peer_ip[16], uint16_t peer_port, bool peer_v6,
                             const uint8_t txid[12], size_t* out_len);

}  // namespace rtcedge
