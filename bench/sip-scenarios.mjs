// SIPp 3.6.1 scenarios of the SIP benchmark (written to a temp dir by bench/sip.mjs).
// Response-time measures (rtd): each request with a timer to its final response, so SIPp's
// ResponseTime<n> columns and repartitions are per transaction as seen by SIPp (1 ms clock).

/** Response-time repartition bins, ms (SIPp counts responses per bin: < 1, 1–2, …, ≥ the last). */
export const REPARTITION_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
const repartition = `<ResponseTimeRepartition value="${REPARTITION_MS.join(', ')}"/>`;

/**
 * The port in the REGISTER scenario's Contact: fixed (not SIPp's local port, which the bench rotates), so
 * each user keeps one binding per transport that every registration refreshes, however many steps run.
 */
export const CONTACT_PORT = 5999;

/**
 * REGISTER → 401 (digest challenge) → REGISTER with credentials → 200; user and password from the
 * injection file (field0, field1). rtd 1: the first REGISTER to its 401, rtd 2: the second to its 200.
 * The Request-URI is sip:<server address>, so the digest uri SIPp fills in names the same URI.
 */
export const REGISTER_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="register with digest">
  <send retrans="500" start_rtd="1">
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:[field0]@[local_ip]:${CONTACT_PORT};transport=[transport]>
Expires: 3600
User-Agent: rtcedge-bench
Content-Length: 0

    ]]>
  </send>
  <recv response="401" auth="true" rtd="1"/>
  <send retrans="500" start_rtd="2">
    <![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];rport;branch=[branch]
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag[call_number]
To: <sip:[field0]@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:[field0]@[local_ip]:${CONTACT_PORT};transport=[transport]>
Expires: 3600
[authentication username="[field0]" password="[field1]"]
User-Agent: rtcedge-bench
Content-Length: 0

    ]]>
  </send>
  <recv response="200" rtd="2"/>
  ${repartition}
</scenario>
`;

/**
 * A call from field0 (password field1) to [service] through the record-routing proxy:
 * INVITE → 407 → ACK → INVITE with credentials → 200 → ACK → BYE → 200, the ACK and BYE along the
 * recorded route. rtd 1: INVITE → 407, rtd 2: INVITE with credentials → 200, rtd 3: BYE → 200.
 */
export const CALL_UAC_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="call through the proxy">
  <send retrans="500" start_rtd="1">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true" rtd="1"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
Max-Forwards: 70
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Content-Length: 0

    ]]>
  </send>
  <send retrans="500" start_rtd="2">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
[authentication username="[field0]" password="[field1]"]
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true" rtd="2"/>
  <send>
    <![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
[routes]
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Contact: <sip:[field0]@[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

    ]]>
  </send>
  <send retrans="500" start_rtd="3">
    <![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
[routes]
Max-Forwards: 70
From: <sip:[field0]@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true" rtd="3"/>
  ${repartition}
</scenario>
`;

/**
 * The called party behind the proxy (a SIPp UAS registered as [service]): answers each INVITE with 200
 * at once, mirroring the Record-Route; then the ACK and the BYE (answered 200) arrive along the route.
 */
export const CALL_UAS_SCENARIO = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="UAS that answers at once">
  <recv request="INVITE"/>
  <send retrans="500">
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:[service]@[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000

    ]]>
  </send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

    ]]>
  </send>
</scenario>
`;
