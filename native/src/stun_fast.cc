#include "stun_fast.h"

#include <cstring>

namespace rtcedge {

namespace {

struct CrcTable {
  uint32_t t[256];
  CrcTable() {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
  }
};

const CrcTable kCrc;

const uint8_t kMagicBytes[4] = {0x21, 0x12, 0xA4, 0x42};

}  // namespace

uint32_t Crc32(const uint8_t* data, size_t len) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < len; i++) c = kCrc.t[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

SendParse ParseSendIndication(const uint8_t* msg, size_t len, SendIndication* out) {
  if (len < 20) return SendParse::kMalformed;
  const size_t body = rd16(msg + 2);
  if ((body & 3) != 0 || 20 + body > len) return SendParse::kMalformed;
  const uint8_t* txid = msg + 8;
  bool have_peer = false;
  bool have_data = false;
  size_t off = 20;
  const size_t end = 20 + body;
  while (off < end) {
    if (off + 4 > end) return SendParse::kMalformed;
    const uint16_t type = rd16(msg + off);
    const size_t alen = rd16(msg + off + 2);
    const size_t vstart = off + 4;
    if (vstart + alen > end) return SendParse::kMalformed;
    const size_t next = vstart + ((alen + 3) & ~static_cast<size_t>(3));
    if (next > end) return SendParse::kMalformed;
    const uint8_t* v = msg + vstart;
    if (type == kAttrXorPeerAddress && !have_peer) {
      if (alen < 4) return SendParse::kMalformed;
      const uint8_t family = v[1];
      out->peer_port = static_cast<uint16_t>(rd16(v + 2) ^ (kMagicCookie >> 16));
      if (family == 0x01 && alen == 8) {
        std::memset(out->peer_ip, 0, 10);
        out->peer_ip[10] = 0xFF;
        out->peer_ip[11] = 0xFF;
        for (int i = 0; i < 4; i++) out->peer_ip[12 + i] = v[4 + i] ^ kMagicBytes[i];
        out->peer_v6 = false;
      } else if (family == 0x02 && alen == 20) {
        for (int i = 0; i < 4; i++) out->peer_ip[i] = v[4 + i] ^ kMagicBytes[i];
        for (int i = 0; i < 12; i++) out->peer_ip[4 + i] = v[8 + i] ^ txid[i];
        out->peer_v6 = true;
      } else {
        return SendParse::kMalformed;
      }
      have_peer = true;
    } else if (type == kAttrData && !have_data) {
      out->data = v;
      out->data_len = alen;
      have_data = true;
    } else if (type == kAttrFingerprint) {
      if (alen != 4 || next != end) return SendParse::kMalformed;
      const uint32_t want = Crc32(msg, off) ^ 0x5354554Eu;
      if (rd32(v) != want) return SendParse::kBadFingerprint;
    }
    off = next;
  }
  return have_peer && have_data ? SendParse::kOk : SendParse::kMalformed;
}

uint8_t* BuildDataIndication(uint8_t* data, size_t data_len, const uint8_t peer_ip[16], uint16_t peer_port, bool peer_v6,
                             const uint8_t txid[12], size_t* out_len) {
  const size_t head = peer_v6 ? kDataIndicationHeadV6 : kDataIndicationHeadV4;
  const size_t pad = (4 - (data_len & 3)) & 3;
  uint8_t* m = data - head;
  const size_t body = head - 20 + data_len + pad;
  wr16(m, kDataIndication);
  wr16(m + 2, static_cast<uint16_t>(body));
  wr32(m + 4, kMagicCookie);
  std::memcpy(m + 8, txid, 12);
  uint8_t* a = m + 20;
  wr16(a, kAttrXorPeerAddress);
  wr16(a + 2, peer_v6 ? 20 : 8);
  a[4] = 0;
  a[5] = peer_v6 ? 0x02 : 0x01;
  wr16(a + 6, static_cast<uint16_t>(peer_port ^ (kMagicCookie >> 16)));
  if (peer_v6) {
    for (int i = 0; i < 4; i++) a[8 + i] = peer_ip[i] ^ kMagicBytes[i];
    for (int i = 0; i < 12; i++) a[12 + i] = peer_ip[4 + i] ^ txid[i];
    a += 24;
  } else {
    for (int i = 0; i < 4; i++) a[8 + i] = peer_ip[12 + i] ^ kMagicBytes[i];
    a += 12;
  }
  wr16(a, kAttrData);
  wr16(a + 2, static_cast<uint16_t>(data_len));
  for (size_t i = 0; i < pad; i++) data[data_len + i] = 0;
  *out_len = head + data_len + pad;
  return m;
}

}  // namespace rtcedge
