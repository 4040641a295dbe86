/* Dialable candidate endpoints (endpoint_check.h). */
#include "endpoint_check.h"

#include <netinet/in.h>
#include <string.h>

static bool ipv4_dialable(const uint8_t a[4])
{
	if (a[0] == 0 || a[0] == 127) /* "this network" (RFC 1122), loopback */
		return false;
	if (a[0] == 169 && a[1] == 254) /* link-local (RFC 3927) */
		return false;
	if (a[0] >= 224) /* multicast 224/4, reserved 240/4 with 255.255.255.255 */
		return false;
	return true;
}

static bool ipv6_dialable(const uint8_t a[16])
{
	static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t zero[15] = { 0 };

	if (memcmp(a, mapped_prefix, sizeof(mapped_prefix)) == 0)
		return ipv4_dialable(a + 12);
	if (memcmp(a, zero, sizeof(zero)) == 0 && (a[15] == 0 || a[15] == 1)) /* ::, ::1 */
		return false;
	if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) /* fe80::/10 */
		return false;
	if (a[0] == 0xff) /* multicast */
		return false;
	return true;
}

bool endpoint_is_dialable(const struct sockaddr *sa)
{
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		uint8_t a[4];
		memcpy(a, &in->sin_addr, sizeof(a));
		return in->sin_port != 0 && ipv4_dialable(a);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		return in6->sin6_port != 0 && ipv6_dialable(in6->sin6_addr.s6_addr);
	}
	return false;
}

bool control_endpoint_is_dialable(const struct control_endpoint *ep)
{
	if (!ep || ep->port == 0)
		return false;
	if (ep->family == 4)
		return ipv4_dialable(ep->addr);
	if (ep->family == 6)
		return ipv6_dialable(ep->addr);
	return false;
}
