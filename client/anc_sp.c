/*
 * anc_sp.c — see anc_sp.h for what and why.
 *
 * Wire format (nng's SP, the same bytes nng's REQ socket sends):
 *  - on connecting, each side sends 8 bytes: 0x00 'S' 'P' 0x00, its
 *    protocol number (16 bits, big-endian: REQ0 is 0x30, REP0 0x31) and
 *    two zero bytes; a peer whose number is not REP0 is refused;
 *  - then each message is, on tcp://, its length as 64 bits big-endian
 *    and the bytes; on ipc:// the same preceded by a type byte of 1;
 *  - a REQ message starts with the request ID, 32 bits big-endian with
 *    the top bit set; the REP reply starts with the same word (a device
 *    between the two would add words before it: the ID is the first word
 *    with the top bit set).
 *
 * Every socket is non-blocking and every wait is a poll() bounded by the
 * call's deadline, so no call outlives its timeout, whatever the peer
 * does. MSG_NOSIGNAL: a server that goes away is an error value, not a
 * SIGPIPE.
 */
#define _GNU_SOURCE
#include "anc_sp.h"
#include "anc_proto.h"
#include "anc_url.h"

#include <errno.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SP_PROTO_REQ0 0x30
#define SP_PROTO_REP0 0x31

/* Waits between attempts to connect: nng's reconnect timer starts at
 * 100 ms; a server coming up is found sooner here. */
#define SP_BACKOFF_MIN_NS (10 * 1000000LL)
#define SP_BACKOFF_MAX_NS (100 * 1000000LL)

/* Outcomes of the steps below, besides ANC_OK (0) and the anc codes. */
enum { SP_RETRY = -1, SP_LOST = -2, SP_TIMEDOUT = -3 };

static int64_t
now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* Wait for ev on fd until deadline: 1 ready (or hung up: the next read
 * or write says which), 0 past the deadline, -1 with errno. Looks at
 * least once, so an attempt made at the deadline can still succeed. */
static int
wait_fd(int fd, short ev, int64_t deadline)
{
	for (int once = 1;; once = 0) {
		int64_t left = deadline - now_ns();
		struct pollfd p = {fd, ev, 0};
		int r;

		if (left <= 0 && !once)
			return 0;
		left = left <= 0 ? 0 : (left + 999999) / 1000000;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (left == 0 && r == 0)
			return 0;
	}
}

static void
sleep_until(int64_t t)
{
	struct timespec ts;
	int64_t left = t - now_ns();

	if (left <= 0)
		return;
	ts.tv_sec = left / 1000000000LL;
	ts.tv_nsec = left % 1000000000LL;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One literal address into ss: 1 if host is one of family's. */
static int
addr_of(const char *host, int family, unsigned port,
        struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET && inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return 1;
	}
	if (family == AF_INET6 &&
	    inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 1;
	}
	return 0;
}

/* The addresses of a tcp URL's host without a name lookup: an IPv4 or
 * IPv6 literal, or "localhost", which is both loopbacks (127.0.0.1 and
 * ::1, in that order; one of them for tcp4:// and tcp6://): a server
 * listening on tcp://localhost binds whichever its resolver gives first,
 * and /etc/hosts files differ. 0 addresses for a name, which goes to nng
 * (getaddrinfo can block past any deadline). sp may be NULL (a check). */
static int
tcp_literal(const char *url, anc_sp *sp)
{
	char host[256];
	const char *port;
	int v6 = strncmp(url, "tcp6://", 7) == 0;
	int v4 = strncmp(url, "tcp4://", 7) == 0;
	int lh, n = 0;
	anc_sp scratch;
	char *end;
	unsigned long pn;

	if (sp == NULL)
		sp = &scratch;
	if (!anc_url_tcp_split(url, host, sizeof(host), &port) || !*port)
		return 0;
	pn = strtoul(port, &end, 10);
	if (*end != '\0' || pn == 0 || pn > 65535)
		return 0;
	lh = strcmp(host, "localhost") == 0;
	if (!v6 && addr_of(lh ? "127.0.0.1" : host, AF_INET, (unsigned)pn,
	                   &sp->addr[n], &sp->addrlen[n]))
		n++;
	if (!v4 && addr_of(lh ? "::1" : host, AF_INET6, (unsigned)pn,
	                   &sp->addr[n], &sp->addrlen[n]))
		n++;
	sp->naddr = n;
	return n;
}

int
anc_sp_supports(const char *url)
{
	if (url == NULL)
		return 0;
	if (strncmp(url, "ipc://", 6) == 0)
		return 1;
	return (strncmp(url, "tcp://", 6) == 0 ||
	        strncmp(url, "tcp4://", 7) == 0 ||
	        strncmp(url, "tcp6://", 7) == 0) &&
	       tcp_literal(url, NULL) > 0;
}

int
anc_sp_init(anc_sp *sp, const char *url, uint32_t max_message,
            anc_error *err)
{
	memset(sp, 0, sizeof(*sp));
	sp->fd = -1;
	sp->url = url;
	sp->max_message = max_message;
	sp->rcvmax = (size_t)max_message + ANC_NNG_HEADER_SLACK;
	/* nng starts its REQ IDs at a random number; so do we, so that two
	 * clients' IDs seldom meet in a trace. */
	sp->next_id = (uint32_t)((uint64_t)now_ns() ^ ((uint64_t)getpid() << 16));
	if (strncmp(url, "ipc://", 6) == 0) {
		struct sockaddr_un a;
		sp->ipc = 1;
		if (strlen(url + 6) >= sizeof(a.sun_path))
			return anc_error_set(err, ANC_EINVAL, "%s: the socket "
			    "path is %zu bytes, over the system's %zu", url,
			    strlen(url + 6), sizeof(a.sun_path) - 1);
		if ((sp->path = strdup(url + 6)) == NULL)
			goto nomem;
		return ANC_OK;
	}
	if (tcp_literal(url, sp) == 0)
		return anc_error_set(err, ANC_EINVAL, "%s: expected "
		    "tcp://ADDRESS:PORT with an IP address or localhost (a "
		    "host name is dialled by nng)", url);
	return ANC_OK;
nomem:
	anc_sp_fini(sp);
	return anc_error_set(err, ANC_ENOMEM, "client for %s: out of memory",
	                     url);
}

static void
sp_drop(anc_sp *sp)
{
	if (sp->fd >= 0)
		(void)close(sp->fd); /* nothing to do on failure */
	sp->fd = -1;
}

void
anc_sp_fini(anc_sp *sp)
{
	if (sp == NULL)
		return;
	sp_drop(sp);
	free(sp->path);
	free(sp->rbuf);
	sp->path = NULL;
	sp->rbuf = NULL;
	sp->rcap = 0;
}

/* Write all of iov[0..n) (modified) before deadline. */
static int
send_all(anc_sp *sp, struct iovec *iov, int n, int64_t deadline,
         anc_error *err)
{
	while (n > 0) {
		struct msghdr m;
		ssize_t w;

		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		m.msg_iovlen = (size_t)n;
		w = sendmsg(sp->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				int r = wait_fd(sp->fd, POLLOUT, deadline);
				if (r == 0)
					return SP_TIMEDOUT;
				if (r < 0)
					goto fail;
				continue;
			}
			if (errno == EPIPE || errno == ECONNRESET)
				return SP_LOST;
			goto fail;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++, n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return ANC_OK;
fail:
	return anc_error_set(err, ANC_ETRANSPORT, "send to %s: %s", sp->url,
	                     strerror(errno));
}

/* Read exactly len bytes into buf before deadline. */
static int
recv_all(anc_sp *sp, void *buf, size_t len, int64_t deadline,
         anc_error *err)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = recv(sp->fd, p, len, MSG_DONTWAIT);
		if (r > 0) {
			p += r, len -= (size_t)r;
			continue;
		}
		if (r == 0)
			return SP_LOST; /* the peer closed the connection */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(sp->fd, POLLIN, deadline);
			if (w == 0)
				return SP_TIMEDOUT;
			if (w > 0)
				continue;
		}
		if (errno == ECONNRESET)
			return SP_LOST;
		return anc_error_set(err, ANC_ETRANSPORT, "receive from %s: %s",
		                     sp->url, strerror(errno));
	}
	return ANC_OK;
}

/* A new socket connected (or connecting) to addr; SP_RETRY when nothing
 * listens there now (*sys: errno). */
static int
sp_socket(anc_sp *sp, const struct sockaddr *addr, socklen_t alen,
          int64_t deadline, int *sys, anc_error *err)
{
	int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	                SOCK_CLOEXEC, 0);
	int e;

	if (fd < 0 && errno == EAFNOSUPPORT)
		return *sys = errno, SP_RETRY; /* no IPv6 here: the next address */
	if (fd < 0)
		return anc_error_set(err, errno == ENOMEM || errno == ENOBUFS
		    ? ANC_ENOMEM : ANC_ETRANSPORT, "connect to %s: socket: %s",
		    sp->url, strerror(errno));
	if (connect(fd, addr, alen) == 0)
		goto done;
	e = errno;
	if (e == EINPROGRESS || e == EINTR) {
		socklen_t el = sizeof(e);
		int r = wait_fd(fd, POLLOUT, deadline);
		if (r == 0) {
			close(fd);
			*sys = ETIMEDOUT;
			return SP_TIMEDOUT;
		}
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0)
			e = errno;
		if (e == 0)
			goto done;
	}
	close(fd);
	*sys = e;
	switch (e) {
	case ECONNREFUSED: case ENOENT: case EAGAIN: /* full backlog */
	case ECONNRESET: case ETIMEDOUT: case EHOSTUNREACH:
	case ENETUNREACH: case ECONNABORTED: case EADDRNOTAVAIL:
		return SP_RETRY;
	default:
		return anc_error_set(err, ANC_ETRANSPORT, "connect to %s: %s",
		                     sp->url, strerror(e));
	}
done:
	if (!sp->ipc) {
		int one = 1; /* as nng: requests are small and latency-bound */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		                 sizeof(one));
	}
	sp->fd = fd;
	return ANC_OK;
}

/* One attempt to connect and exchange SP headers. */
static int
sp_connect(anc_sp *sp, int64_t deadline, int *sys, anc_error *err)
{
	uint8_t mine[8] = {0, 'S', 'P', 0, 0, SP_PROTO_REQ0, 0, 0}, peer[8];
	struct iovec iov = {mine, sizeof(mine)};
	int rc;

	*sys = 0; /* stays 0 for a handshake that times out */
	if (sp->ipc) {
		struct sockaddr_un a;
		memset(&a, 0, sizeof(a));
		a.sun_family = AF_UNIX;
		memcpy(a.sun_path, sp->path, strlen(sp->path) + 1);
		rc = sp_socket(sp, (struct sockaddr *)&a, sizeof(a), deadline,
		               sys, err);
	} else {
		/* localhost is two addresses: whatever fails on the first
		 * (refused, or no IPv6 on this loopback) moves on to the
		 * next; the first one's error is the one reported */
		int first = 0;
		rc = SP_RETRY;
		for (int i = 0; i < sp->naddr && rc != ANC_OK; i++) {
			int e = 0;
			if (i > 0 && rc == SP_TIMEDOUT)
				break;
			rc = sp_socket(sp, (struct sockaddr *)&sp->addr[i],
			               sp->addrlen[i], deadline, &e, err);
			if (i == 0)
				first = e;
			if (rc != ANC_OK && rc != SP_TIMEDOUT &&
			    i + 1 < sp->naddr)
				rc = SP_RETRY;
		}
		*sys = first;
	}
	if (rc != ANC_OK)
		return rc;
	if ((rc = send_all(sp, &iov, 1, deadline, err)) == ANC_OK)
		rc = recv_all(sp, peer, sizeof(peer), deadline, err);
	if (rc != ANC_OK) {
		sp_drop(sp);
		/* closed in the handshake: a server over its
		 * --max-connections, or one stopping */
		return rc == SP_LOST ? (*sys = ECONNRESET, SP_RETRY) : rc;
	}
	if (memcmp(peer, mine, 4) != 0 || peer[6] != 0 || peer[7] != 0 ||
	    peer[4] != 0 || peer[5] != SP_PROTO_REP0) {
		sp_drop(sp);
		if (memcmp(peer, mine, 4) != 0)
			return anc_error_set(err, ANC_ETRANSPORT, "connect to "
			    "%s: the peer does not speak nng's SP protocol (is "
			    "that an anchorage-server?)", sp->url);
		return anc_error_set(err, ANC_ETRANSPORT, "connect to %s: the "
		    "peer is an nng socket of protocol %u, not REP0 (%u): not "
		    "an anchorage-server", sp->url,
		    (unsigned)peer[4] << 8 | peer[5], SP_PROTO_REP0);
	}
	sp->added++;
	sp->pid = getpid();
	return ANC_OK;
}

int
anc_sp_connect_now(anc_sp *sp, int timeout_ms, anc_error *err)
{
	int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000LL;
	int sys = 0, rc;

	if (sp->fd >= 0)
		return ANC_OK;
	rc = sp_connect(sp, deadline, &sys, err);
	if (rc == SP_RETRY && sys == ECONNRESET)
		return anc_error_set(err, ANC_EUNAVAILABLE, "server %s: the "
		    "connection was closed in the SP handshake (a server "
		    "stopping, at its --max-connections, or a tls+tcp:// "
		    "listener)", sp->url);
	if (rc == SP_RETRY && sys == EAGAIN)
		return anc_error_set(err, ANC_EUNAVAILABLE, "server %s: its "
		    "queue of connections to accept is full (overloaded, or "
		    "stopped?)", sp->url);
	if (rc == SP_RETRY)
		return anc_error_set(err, ANC_EUNAVAILABLE, "server %s: %s (is "
		    "anchorage-server running with --listen %s?)", sp->url,
		    strerror(sys), sp->url);
	if (rc == SP_TIMEDOUT)
		return anc_error_set(err, ANC_ETIMEOUT, "server %s: no "
		    "connection within %d ms (a server there that does not "
		    "answer: stopped, or overloaded?)", sp->url, timeout_ms);
	return rc;
}

/* Is the idle connection still open? A late reply waiting in it is fine
 * (sp_recv drops it by its ID); end of file or an error is not. */
static int
sp_alive(const anc_sp *sp)
{
	struct pollfd p = {sp->fd, POLLIN, 0};
	char b;
	ssize_t r;

	if (poll(&p, 1, 0) <= 0)
		return 1;
	r = recv(sp->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (r > 0)
		return 1;
	return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	                 errno == EINTR);
}

static void
put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static int
sp_send(anc_sp *sp, uint32_t id, const void *req, size_t len,
        int64_t deadline, anc_error *err)
{
	uint8_t head[13];
	size_t h = 0;
	struct iovec iov[2];

	if (sp->ipc)
		head[h++] = 1;
	put64(head + h, (uint64_t)len + 4);
	h += 8;
	for (int i = 0; i < 4; i++)
		head[h++] = (uint8_t)(id >> (24 - 8 * i));
	iov[0].iov_base = head;
	iov[0].iov_len = h;
	iov[1].iov_base = (void *)req;
	iov[1].iov_len = len;
	return send_all(sp, iov, len > 0 ? 2 : 1, deadline, err);
}

/* Read messages until the reply to id: *body and *blen in sp->rbuf. */
static int
sp_recv(anc_sp *sp, uint32_t id, int64_t deadline, const uint8_t **body,
        size_t *blen, anc_error *err)
{
	for (;;) {
		uint8_t head[9];
		size_t hl = sp->ipc ? 9 : 8, n, off;
		uint64_t len = 0;
		int rc;

		if ((rc = recv_all(sp, head, hl, deadline, err)) != ANC_OK)
			return rc;
		if (sp->ipc && head[0] != 1)
			return SP_LOST; /* nng closes such a pipe too */
		for (size_t i = hl - 8; i < hl; i++)
			len = len << 8 | head[i];
		if (len > sp->rcvmax) {
			sp_drop(sp); /* the rest is never read */
			return anc_error_set(err, ANC_ETOOBIG, "reply from %s: "
			    "%llu bytes, over the client's limit max_message="
			    "%u (raise the client's limits, or ask for less: "
			    "fewer hits, no text)", sp->url,
			    (unsigned long long)len, sp->max_message);
		}
		n = (size_t)len;
		if (n > sp->rcap) {
			size_t cap = sp->rcap ? sp->rcap : 4096;
			uint8_t *nb;
			while (cap < n)
				cap *= 2;
			if ((nb = realloc(sp->rbuf, cap)) == NULL) {
				sp_drop(sp);
				return anc_error_set(err, ANC_ENOMEM, "reply "
				    "from %s: cannot hold %zu bytes", sp->url,
				    n);
			}
			sp->rbuf = nb, sp->rcap = cap;
		}
		if ((rc = recv_all(sp, sp->rbuf, n, deadline, err)) != ANC_OK)
			return rc;
		/* the backtrace: the request ID is the first word with the
		 * top bit set; a message without one is dropped, as nng's
		 * REQ does */
		for (off = 0; off + 4 <= n; off += 4)
			if (sp->rbuf[off] & 0x80)
				break;
		if (off + 4 > n)
			continue;
		uint32_t got = (uint32_t)sp->rbuf[off] << 24 |
		               (uint32_t)sp->rbuf[off + 1] << 16 |
		               (uint32_t)sp->rbuf[off + 2] << 8 |
		               sp->rbuf[off + 3];
		if (got != id)
			continue; /* the reply to a request that timed out */
		*body = sp->rbuf + off + 4;
		*blen = n - off - 4;
		return ANC_OK;
	}
}

int
anc_sp_call(anc_sp *sp, const void *req, size_t len, int timeout_ms,
            const uint8_t **reply, size_t *reply_len, anc_error *err)
{
	int64_t deadline = now_ns() + (int64_t)timeout_ms * 1000000LL;
	int64_t backoff = SP_BACKOFF_MIN_NS;
	uint32_t id;
	int rc, sys;

	*reply = NULL;
	*reply_len = 0;
	/* A child of fork() holds its parent's connection and next ID: used
	 * by both, each could read the other's reply. The child leaves it
	 * to the parent (closing only its own descriptor) and starts its own
	 * connection with other IDs. */
	if (sp->fd >= 0 && sp->pid != getpid()) {
		(void)close(sp->fd);
		sp->fd = -1;
		sp->next_id ^= (uint32_t)getpid() * 2654435761u;
	}
	id = (sp->next_id++ & 0x7fffffffu) | 0x80000000u;
	sp->last_errno = 0;
	/* Keep a big reply buffer for one call only. */
	if (sp->rcap > (4u << 20)) {
		free(sp->rbuf);
		sp->rbuf = NULL, sp->rcap = 0;
	}
	/* A connection that died while idle (a server restarted between
	 * calls) is replaced before the request goes out: it was not lost
	 * with this request in it. */
	if (sp->fd >= 0 && !sp_alive(sp))
		sp_drop(sp);
	sp->progress = sp->fd >= 0 ? SP_CONNECTED : SP_NOTHING;
	for (int last = 0;; ) {
		if (sp->fd < 0) {
			rc = sp_connect(sp, deadline, &sys, err);
			if (rc == SP_RETRY || rc == SP_TIMEDOUT)
				sp->last_errno = sys;
			if (rc == SP_RETRY) {
				if (last)
					goto timedout;
				goto pause;
			}
			if (rc == SP_TIMEDOUT)
				goto timedout;
			if (rc != ANC_OK)
				return rc;
			if (sp->progress < SP_CONNECTED)
				sp->progress = SP_CONNECTED;
		}
		rc = sp_send(sp, id, req, len, deadline, err);
		if (rc == SP_LOST) { /* not all of it went out */
			sp_drop(sp);
			if (sp->progress == SP_CONNECTED)
				sp->progress = SP_NOTHING;
			goto pause;
		}
		if (rc == ANC_OK)
			sp->progress = SP_SENT;
		if (rc == ANC_OK)
			rc = sp_recv(sp, id, deadline, reply, reply_len, err);
		if (rc == SP_LOST) {
			/* lost with the request in it: as nng's REQ, send it
			 * again on a new connection */
			sp->lost++;
			sp_drop(sp);
			goto pause;
		}
		if (rc == SP_TIMEDOUT) {
			/* a message cut short leaves the stream unusable;
			 * a whole request's late reply is told by its ID,
			 * but dropping the connection is simpler and rare */
			sp_drop(sp);
			goto timedout;
		}
		if (rc != ANC_OK)
			sp_drop(sp);
		return rc;
pause:
		/* Wait before the next attempt, longer each time (a server
		 * that closes every connection, one over its
		 * --max-connections or stopping, is not hammered); the last
		 * attempt is made at the deadline itself. */
		{
			int64_t t = now_ns() + backoff;
			if (last)
				goto timedout;
			if (t >= deadline) {
				t = deadline;
				last = 1;
			}
			sleep_until(t);
			backoff = backoff * 2 > SP_BACKOFF_MAX_NS
			    ? SP_BACKOFF_MAX_NS : backoff * 2;
		}
	}
timedout:
	if (sp->progress == SP_NOTHING)
		return anc_error_set(err, ANC_ETIMEOUT, "connect to %s: Timed "
		    "out after %d ms without a connection (last attempt: %s)",
		    sp->url, timeout_ms, sp->last_errno != 0
		        ? strerror(sp->last_errno)
		        : "a listener took the connection and sent no SP "
		          "header: stopped, or overloaded?");
	if (sp->progress == SP_CONNECTED)
		return anc_error_set(err, ANC_ETIMEOUT, "send to %s: Timed out "
		    "after %d ms with the request not taken whole (the server "
		    "does not read: stopped, or overloaded?)", sp->url,
		    timeout_ms);
	return anc_error_set(err, ANC_ETIMEOUT, "%s: no reply within %d ms",
	                     sp->url, timeout_ms);
}
