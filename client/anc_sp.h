/*
 * anc_sp.h — the REQ end of nng's SP protocol on a socket of our own, for
 * the client library's synchronous calls over ipc:// and tcp://.
 *
 * The server is nng's REP socket and stays so; this speaks the same wire
 * protocol (the SP header exchange, the ipc:// and tcp:// framings, the
 * REQ request ID), so any nng REQ client and this one are interchangeable.
 * Why not nng's own REQ socket for a synchronous call: nng 1.5.2 hands
 * every message between its poller thread, its task threads and the
 * caller (a send is completed on a task thread, a reply is read on the
 * poller and then handed over twice), and on a 2-vCPU VM each hand-off is
 * a wake-up of another thread, often of a halted vCPU. A bare echo of
 * query-sized messages against the same nng REP server measured p50
 * 287-300 us with nng's REQ and 144-154 us with this (2026-11-30, bench
 * query_bench "transport" rows). Here the caller's thread does the system
 * calls itself: one wake-up per reply.
 *
 * What nng's REQ did that callers rely on, kept:
 *  - a connection that is lost while a request waits is made again and
 *    the request sent again (every Anchorage operation is idempotent), so
 *    a server restart during a call is transparent;
 *  - a server that is not up yet is waited for, up to the call's timeout;
 *  - replies to earlier requests (one that timed out) are told apart by
 *    the SP request ID and dropped;
 *  - a reply over the receive limit is not read into memory.
 * Different, on purpose: a reply over the limit fails the call at once
 * (ANC_ETOOBIG) instead of nng's silent drop and a timeout, and a peer
 * that is not an SP REP socket is named as such instead of redialled.
 *
 * Not for tls+tcp:// (nng's TLS) or pipelines (nng REQ contexts): the
 * client library keeps nng for those. Not thread-safe: the client's busy
 * guard serialises calls.
 */
#ifndef ANC_SP_H
#define ANC_SP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

enum { SP_NOTHING, SP_CONNECTED, SP_SENT };

#include "anc_error.h"

typedef struct anc_sp {
	int fd;             /* -1 while not connected */
	int ipc;            /* 1: ipc:// framing (a type byte) */
	char *path;         /* ipc:// socket path */
	struct sockaddr_storage addr[2]; /* tcp: the server's addresses, */
	socklen_t addrlen[2];            /* tried in order */
	int naddr;
	pid_t pid;          /* the process that made fd: a fork's child
	                       must not share it */
	int progress;       /* how far the last call got: SP_NOTHING,
	                       SP_CONNECTED or SP_SENT */
	int last_errno;     /* its last failed connect; 0 when a listener
	                       took the connection but gave no SP header */
	const char *url;    /* for messages; the client's copy */
	size_t rcvmax;      /* largest reply accepted, SP header included */
	uint32_t max_message; /* the limit as the caller named it */
	uint32_t next_id;   /* low 31 bits of the next SP request ID */
	unsigned lost;      /* connections lost while in use */
	unsigned added;     /* connections made */
	uint8_t *rbuf;      /* reply buffer, reused */
	size_t rcap;
} anc_sp;

/* 1 if url is one this transport speaks: ipc://, and tcp://, tcp4://,
 * tcp6:// to an IP address or localhost. Not tls+, not inproc://, and not
 * a host name: a name lookup (getaddrinfo) cannot be bounded by a call's
 * timeout and fails at once for a name not yet known, where nng's dialer
 * keeps trying. */
int anc_sp_supports(const char *url);

/* Prepare sp for url (already checked by anc_url_check); no I/O. url is
 * borrowed for messages and must outlive sp. Replies over max_message
 * (and nng's header slack) are refused. */
int anc_sp_init(anc_sp *sp, const char *url, uint32_t max_message,
                anc_error *err);
void anc_sp_fini(anc_sp *sp);

/* Connect now, giving up after timeout_ms: ANC_EUNAVAILABLE when nothing
 * listens (refused, no such socket), ANC_ETIMEOUT when a listener does
 * not complete the SP handshake in time. */
int anc_sp_connect_now(anc_sp *sp, int timeout_ms, anc_error *err);

/* One request: send req[len] as a REQ message and wait at most
 * timeout_ms for its reply, connecting (again) as needed. On ANC_OK
 * *reply points at the reply's body in sp's buffer, valid until the next
 * call. ANC_ETIMEOUT leaves err->msg for the caller to word. */
int anc_sp_call(anc_sp *sp, const void *req, size_t len, int timeout_ms,
                const uint8_t **reply, size_t *reply_len, anc_error *err);

#endif /* ANC_SP_H */
