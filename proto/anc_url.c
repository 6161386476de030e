/*
 * anc_url.c — see anc_url.h.
 */
#include "anc_url.h"

#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

static const char *const tcp_schemes[] = {"tcp://", "tcp4://", "tcp6://",
                                          "tls+tcp://", "tls+tcp4://",
                                          "tls+tcp6://"};

int
anc_url_scheme_ok(const char *url)
{
	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return 1;
	for (size_t i = 0; i < sizeof tcp_schemes / sizeof tcp_schemes[0]; i++)
		if (strncmp(url, tcp_schemes[i], strlen(tcp_schemes[i])) == 0)
			return 1;
	return 0;
}

int
anc_url_tcp_split(const char *url, char *host, size_t cap, const char **port)
{
	const char *h = NULL, *end;
	size_t n;

	for (size_t i = 0;
	     i < sizeof tcp_schemes / sizeof tcp_schemes[0] && h == NULL; i++)
		if (strncmp(url, tcp_schemes[i], strlen(tcp_schemes[i])) == 0)
			h = url + strlen(tcp_schemes[i]);
	if (h == NULL)
		return 0;
	if (h[0] == '[') {
		if ((end = strchr(h, ']')) == NULL)
			return 0;
		h++;
		n = (size_t)(end - h);
		end++;
	} else {
		end = strrchr(h, ':');
		if (end == NULL)
			end = h + strlen(h);
		n = (size_t)(end - h);
	}
	if (n >= cap)
		return 0;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = *end == ':' ? end + 1 : "";
	return 1;
}

int
anc_url_check(const char *url, int listen, const char *what, anc_error *err)
{
	char host[256];
	const char *port;

	if (!anc_url_scheme_ok(url))
		return anc_error_set(err, ANC_EINVAL, "%s %s: unsupported "
		    "scheme; expected ipc://PATH, tcp://HOST:PORT or "
		    "tls+tcp://HOST:PORT%s", what, url, listen
		    ? " (the HTTP listener is --http HOST:PORT)" : "");
	if (anc_url_tcp_split(url, host, sizeof host, &port)) {
		char *end;
		unsigned long p = strtoul(port, &end, 10);
		if (port[0] < '0' || port[0] > '9' || *end != '\0' || p < 1 ||
		    p > 65535 || (!listen && host[0] == '\0'))
			return anc_error_set(err, ANC_EINVAL, "%s %s: expected "
			    "HOST:PORT with a port 1..65535 (e.g. "
			    "tcp://127.0.0.1:7700)", what, url);
		return ANC_OK;
	}
	if (strncmp(url, "tcp", 3) == 0 || strncmp(url, "tls+", 4) == 0)
		return anc_error_set(err, ANC_EINVAL, "%s %s: expected "
		    "HOST:PORT (an IPv6 address in brackets, at most 255 "
		    "bytes)", what, url);
	if (strchr(url, '/')[2] == '\0')
		return anc_error_set(err, ANC_EINVAL, "%s %s: expected "
		    "%s//PATH", what, url, strncmp(url, "ipc", 3) == 0
		    ? "ipc:" : "inproc:");
	return ANC_OK;
}

int
anc_url_is_local(const char *url)
{
	char host[256];
	const char *port;
	unsigned char a[16];

	if (strncmp(url, "ipc://", 6) == 0 || strncmp(url, "inproc://", 9) == 0)
		return 1;
	if (!anc_url_tcp_split(url, host, sizeof host, &port))
		return 0;
	/* Addresses, not names that look like them ("127.example.com"):
	 * only localhost is taken by name. */
	if (strcmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, a) == 1)
		return IN6_IS_ADDR_LOOPBACK((struct in6_addr *)a);
	return 0;
}
