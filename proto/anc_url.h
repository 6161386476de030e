/*
 * anc_url.h — the nng URLs Anchorage speaks, checked before nng sees them.
 *
 * Both ends need the same reading of a URL: nng 1.5.2 accepts a dialer or
 * listener for tcp://h:99999 or an empty ipc:// path and then retries (a
 * client) or fails later with a vague error (a server), so the server's
 * --listen and the client library's server URL are checked here first.
 * Pure string work, no I/O.
 */
#ifndef ANC_URL_H
#define ANC_URL_H

#include <stddef.h>

#include "anc_error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 if url's scheme is one Anchorage serves and dials: ipc://, inproc://,
 * tcp://, tcp4://, tcp6:// and the tls+ forms of the tcp ones. */
int anc_url_scheme_ok(const char *url);

/* The host of a tcp-family URL into host[cap], without the brackets of an
 * IPv6 address; *port: the text after the host's ':' ("" when there is
 * none). 0 for another scheme, an unclosed '[', or a host that does not
 * fit in cap. */
int anc_url_tcp_split(const char *url, char *host, size_t cap,
                      const char **port);

/* Is url well formed for a listener (listen 1) or a dialer (listen 0): a
 * scheme of anc_url_scheme_ok, for the tcp family HOST:PORT with a port
 * 1..65535 (an empty host, "every interface", only for a listener), for
 * ipc:// a path. ANC_EINVAL with "WHAT URL: ..." naming what was expected
 * (what: where the URL came from, e.g. "--listen" or "server url"). */
int anc_url_check(const char *url, int listen, const char *what,
                  anc_error *err);

/* Is url loopback-only: ipc://, inproc://, or a tcp-family URL whose host
 * is an address in 127.0.0.0/8, [::1], or the name localhost (names that
 * only look like addresses, "127.example.com", are not)? */
int anc_url_is_local(const char *url);

#ifdef __cplusplus
}
#endif
#endif /* ANC_URL_H */
