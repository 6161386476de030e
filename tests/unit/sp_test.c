/*
 * sp_test.c — the client library's own SP transport (client/anc_sp.c):
 * byte-compatible with nng's REP socket, and what it does with peers that
 * misbehave (a fake peer on a raw socket plays them), and the client's
 * calls over it and over nng side by side against a real server.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "anc_client.h"
#include "anc_sp.h"
#include "testutil.h"

/* ---- a fake peer: one scenario per test, on its own thread ----------- */

typedef struct peer {
	int lfd;        /* listening socket */
	int ipc;        /* ipc:// framing */
	int scenario;
	char url[128];
	pthread_t thr;
	int conns;      /* connections accepted */
} peer;

enum { P_STALE_FIRST, P_HUGE_REPLY, P_WRONG_PROTO, P_NOT_SP, P_DROP_ONCE,
       P_SILENT, P_DROP_ALWAYS, P_ANSWER_THEN_CLOSE, P_ODD_FRAMES };

static int
rd(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r, n -= (size_t)r;
	}
	return 0;
}

static void
wr(int fd, const void *buf, size_t n)
{
	(void)!send(fd, buf, n, MSG_NOSIGNAL);
}

static const uint8_t rep_head[8] = {0, 'S', 'P', 0, 0, 0x31, 0, 0};

/* Read one message; *id its SP request ID. -1 at EOF. */
static int
read_req(const peer *p, int fd, uint32_t *id, uint8_t *body, size_t cap,
         size_t *blen)
{
	uint8_t h[9];
	size_t hl = p->ipc ? 9 : 8;
	uint64_t len = 0;
	uint8_t w[4];

	if (rd(fd, h, hl) != 0)
		return -1;
	for (size_t i = hl - 8; i < hl; i++)
		len = len << 8 | h[i];
	/* cr_expect, not cr_assert: this runs on the peer's thread */
	cr_expect(len >= 4 && len - 4 <= cap, "request of %llu bytes",
	          (unsigned long long)len);
	if (len < 4 || len - 4 > cap)
		return -1;
	if (rd(fd, w, 4) != 0 || rd(fd, body, (size_t)len - 4) != 0)
		return -1;
	*id = (uint32_t)w[0] << 24 | (uint32_t)w[1] << 16 |
	      (uint32_t)w[2] << 8 | w[3];
	*blen = (size_t)len - 4;
	return 0;
}

static void
send_reply(const peer *p, int fd, uint32_t id, const void *body, size_t n)
{
	uint8_t h[13];
	size_t hl = 0;
	uint64_t len = n + 4;
	if (p->ipc)
		h[hl++] = 1;
	for (int i = 0; i < 8; i++)
		h[hl++] = (uint8_t)(len >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		h[hl++] = (uint8_t)(id >> (24 - 8 * i));
	wr(fd, h, hl);
	wr(fd, body, n);
}

/* A frame of n bytes of payload, as is (no request ID added). */
static void
send_frame(const peer *p, int fd, const void *payload, size_t n)
{
	uint8_t h[9];
	size_t hl = 0;
	if (p->ipc)
		h[hl++] = 1;
	for (int i = 0; i < 8; i++)
		h[hl++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	wr(fd, h, hl);
	if (n > 0)
		wr(fd, payload, n);
}

static void *
peer_main(void *arg)
{
	peer *p = arg;
	uint8_t head[8], body[65536];
	size_t blen;
	uint32_t id;

	for (;;) {
		int fd = accept(p->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		p->conns++;
		if (p->scenario == P_NOT_SP) {
			wr(fd, "HTTP/1.1 400 Bad Request\r\n\r\n", 28);
			sleep(1);
			close(fd);
			continue;
		}
		if (p->scenario == P_WRONG_PROTO) {
			uint8_t h[8] = {0, 'S', 'P', 0, 0, 0x30, 0, 0};
			wr(fd, h, 8);
			sleep(1);
			close(fd);
			continue;
		}
		wr(fd, rep_head, 8);
		if (rd(fd, head, 8) != 0) {
			close(fd);
			continue;
		}
		cr_expect_eq(memcmp(head, "\0SP\0\0\x30\0\0", 8), 0,
		             "the client's SP header");
		while (read_req(p, fd, &id, body, sizeof body, &blen) == 0) {
			cr_expect(id & 0x80000000u, "request ID has its top bit");
			if (p->scenario == P_STALE_FIRST) {
				/* a late reply to another request first */
				send_reply(p, fd, id ^ 1, "old", 3);
				send_reply(p, fd, id, body, blen);
			} else if (p->scenario == P_HUGE_REPLY) {
				uint8_t h[9] = {1, 0, 0, 0, 0, 0x40, 0, 0, 0};
				wr(fd, p->ipc ? h : h + 1, p->ipc ? 9 : 8);
			} else if ((p->scenario == P_DROP_ONCE && p->conns == 1) ||
			           p->scenario == P_DROP_ALWAYS) {
				break; /* lost with the request in it */
			} else if (p->scenario == P_ANSWER_THEN_CLOSE) {
				send_reply(p, fd, id, body, blen);
				break; /* closed while the client is idle */
			} else if (p->scenario == P_SILENT) {
				continue;
			} else if (p->scenario == P_ODD_FRAMES) {
				/* frames a REP socket never sends, each
				 * dropped: empty, shorter than an ID, a
				 * word without the top bit and nothing
				 * else; then the reply behind a device's
				 * hop word, which is taken */
				uint8_t m[8 + 65536];
				send_frame(p, fd, NULL, 0);
				send_frame(p, fd, "\x80\x00", 2);
				send_frame(p, fd, "\x00\x00\x00\x07", 4);
				memcpy(m, "\x00\x00\x00\x07", 4);
				for (int i = 0; i < 4; i++)
					m[4 + i] = (uint8_t)(id >> (24 - 8 * i));
				memcpy(m + 8, body, blen);
				send_frame(p, fd, m, 8 + blen);
			} else {
				send_reply(p, fd, id, body, blen);
			}
		}
		close(fd);
	}
}

static void
peer_start(peer *p, int ipc, int scenario)
{
	memset(p, 0, sizeof(*p));
	p->ipc = ipc;
	p->scenario = scenario;
	if (ipc) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		const char *path = tu_path(tu_tmpdir(), "peer.sock");
		snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
		unlink(path);
		p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
		cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
		snprintf(p->url, sizeof p->url, "ipc://%s", path);
	} else {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t al = sizeof a;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		p->lfd = socket(AF_INET, SOCK_STREAM, 0);
		cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof a), 0);
		cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
		snprintf(p->url, sizeof p->url, "tcp://127.0.0.1:%u",
		         ntohs(a.sin_port));
	}
	cr_assert_eq(listen(p->lfd, 8), 0);
	cr_assert_eq(pthread_create(&p->thr, NULL, peer_main, p), 0);
}

/* The same peer on [::1] only: 0 when this machine has no IPv6
 * loopback. */
static int
peer_start6(peer *p, int scenario)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6};
	socklen_t al = sizeof a;
	int one = 1;

	memset(p, 0, sizeof(*p));
	p->scenario = scenario;
	a.sin6_addr = in6addr_loopback;
	if ((p->lfd = socket(AF_INET6, SOCK_STREAM, 0)) < 0)
		return 0;
	(void)setsockopt(p->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(p->lfd);
		return 0;
	}
	cr_assert_eq(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
	snprintf(p->url, sizeof p->url, "tcp://localhost:%u",
	         ntohs(a.sin6_port));
	cr_assert_eq(listen(p->lfd, 8), 0);
	cr_assert_eq(pthread_create(&p->thr, NULL, peer_main, p), 0);
	return 1;
}

static void
peer_stop(peer *p)
{
	shutdown(p->lfd, SHUT_RDWR); /* ends the accept */
	close(p->lfd);
	pthread_join(p->thr, NULL);
}

static int
call(anc_sp *sp, const char *msg, int timeout_ms, const uint8_t **rep,
     size_t *rlen, anc_error *err)
{
	return anc_sp_call(sp, msg, strlen(msg), timeout_ms, rep, rlen, err);
}

/* A fake peer and a client of it, with what one call returns. */
typedef struct fx {
	peer p;
	anc_sp sp;
	anc_error err;
	const uint8_t *rep;
	size_t rlen;
} fx;

static void
fx_start(fx *f, int ipc, int scenario, uint32_t max_message)
{
	memset(f, 0, sizeof(*f));
	peer_start(&f->p, ipc, scenario);
	cr_assert_eq(anc_sp_init(&f->sp, f->p.url, max_message, &f->err), 0,
	             "%s", f->err.msg);
}

static void
fx_stop(fx *f)
{
	anc_sp_fini(&f->sp);
	peer_stop(&f->p);
}

static int
fcall(fx *f, const char *msg, int timeout_ms)
{
	return call(&f->sp, msg, timeout_ms, &f->rep, &f->rlen, &f->err);
}

/* A call that must time out: the seconds it took. */
static double
fcall_timeout(fx *f, const char *msg, int timeout_ms)
{
	double t0 = tu_now();
	cr_assert_eq(fcall(f, msg, timeout_ms), ANC_ETIMEOUT, "%s",
	             f->err.msg);
	return tu_now() - t0;
}

/* ---- against the fake peer ------------------------------------------ */

Test(sp, late_reply_to_another_request_is_dropped)
{
	for (int ipc = 0; ipc <= 1; ipc++) {
		fx f;

		fx_start(&f, ipc, P_STALE_FIRST, 1 << 20);
		for (int i = 0; i < 3; i++) {
			char msg[32];
			snprintf(msg, sizeof msg, "hello %d", i);
			cr_assert_eq(fcall(&f, msg, 5000), 0,
			             "%s", f.err.msg);
			cr_assert_eq(f.rlen, strlen(msg), "%s: %zu bytes", f.p.url,
			             f.rlen);
			cr_assert_eq(memcmp(f.rep, msg, f.rlen), 0);
		}
		cr_assert_eq(f.sp.added, 1, "one connection for all calls");
		fx_stop(&f);
	}
}

Test(sp, frames_without_our_request_id_are_dropped)
{
	for (int ipc = 0; ipc <= 1; ipc++) {
		fx f;

		fx_start(&f, ipc, P_ODD_FRAMES, 4096);
		for (int i = 0; i < 3; i++) {
			cr_assert_eq(fcall(&f, "payload", 2000), 0, "%s",
			             f.err.msg);
			cr_assert_eq(f.rlen, 7);
			cr_assert_eq(memcmp(f.rep, "payload", 7), 0);
		}
		cr_assert_eq(f.sp.added, 1);
		fx_stop(&f);
	}
}

Test(sp, reply_over_the_limit_fails_at_once)
{
	for (int ipc = 0; ipc <= 1; ipc++) {
		fx f;

		fx_start(&f, ipc, P_HUGE_REPLY, 4096);
		double t0 = tu_now();
		cr_assert_eq(fcall(&f, "x", 5000),
		             ANC_ETOOBIG, "%s", f.err.msg);
		cr_assert_lt(tu_now() - t0, 2.0, "not after the timeout");
		cr_assert(strstr(f.err.msg, "max_message=4096") != NULL, "%s",
		          f.err.msg);
		cr_assert(strstr(f.err.msg, "1073741824 bytes") != NULL, "%s",
		          f.err.msg);
		cr_assert_null(f.rep);
		fx_stop(&f);
	}
}

/* The CLI's way back to nng: against a peer whose reply is over the
 * limit, the own SP connection says TOO_LARGE at once, nng's REQ socket
 * drops the reply and times out. */
Test(sp, cli_use_nng_switch)
{
	fx f;
	char *out = NULL, *err = NULL;
	const char *args[] = {"--timeout", "1500", "ping", NULL};

	fx_start(&f, 1, P_HUGE_REPLY, 4096);
	unsetenv("ANCHORAGE_USE_NNG");
	cr_assert_eq(tu_cliv(f.p.url, NULL, &out, &err, args), 1);
	cr_assert_not_null(strstr(err, "TOO_LARGE"), "%s", err);
	free(out);
	free(err);
	setenv("ANCHORAGE_USE_NNG", "1", 1);
	cr_assert_eq(tu_cliv(f.p.url, NULL, &out, &err, args), 1);
	unsetenv("ANCHORAGE_USE_NNG");
	cr_assert_not_null(strstr(err, "TIMEOUT"), "%s", err);
	free(out);
	free(err);
	fx_stop(&f);
}

Test(sp, peer_that_is_not_a_rep_socket_is_named)
{
	fx f;

	fx_start(&f, 1, P_WRONG_PROTO, 4096);
	cr_assert_eq(fcall(&f, "x", 3000), ANC_ETRANSPORT,
	             "%s", f.err.msg);
	cr_assert(strstr(f.err.msg, "protocol 48, not REP0 (49)") != NULL, "%s",
	          f.err.msg);
	fx_stop(&f);

	fx_start(&f, 0, P_NOT_SP, 4096);
	cr_assert_eq(fcall(&f, "x", 3000), ANC_ETRANSPORT,
	             "%s", f.err.msg);
	cr_assert(strstr(f.err.msg, "does not speak nng's SP protocol") != NULL,
	          "%s", f.err.msg);
	fx_stop(&f);
}

Test(sp, request_sent_again_on_a_new_connection)
{
	fx f;

	fx_start(&f, 1, P_DROP_ONCE, 4096);
	cr_assert_eq(fcall(&f, "again", 5000), 0, "%s",
	             f.err.msg);
	cr_assert_eq(f.rlen, 5);
	cr_assert_eq(memcmp(f.rep, "again", 5), 0);
	cr_assert_eq(f.sp.lost, 1);
	cr_assert_eq(f.sp.added, 2);
	fx_stop(&f);
}

/* A peer that closes every connection with the request in it (a server
 * over its --max-message or --max-connections) is reconnected to with a
 * growing pause, 10 ms up to 100 ms, until the timeout: about a dozen
 * connections in a second, not a hundred. */
Test(sp, peer_closing_every_connection_is_not_hammered)
{
	fx f;

	fx_start(&f, 1, P_DROP_ALWAYS, 4096);
	double took = fcall_timeout(&f, "x", 1000);
	cr_assert(took >= 0.95 && took < 2.0, "took %.2f s", took);
	cr_assert(f.sp.lost >= 3 && f.sp.lost <= 20, "%u connections lost",
	          f.sp.lost);
	fx_stop(&f);
}

/* A connection the server closed while the client was idle (a restart
 * between calls) is replaced before the next request goes out, and is
 * not counted as lost with a request in it (the client's timeout message
 * would otherwise say the request may have been applied). */
Test(sp, connection_closed_while_idle_is_not_lost_with_a_request)
{
	fx f;

	fx_start(&f, 1, P_ANSWER_THEN_CLOSE, 4096);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(fcall(&f, "hi", 2000), 0, "%s",
		             f.err.msg);
		cr_assert_eq(f.rlen, 2);
		usleep(50 * 1000); /* the peer's close arrives */
	}
	cr_assert_eq(f.sp.lost, 0);
	cr_assert_eq(f.sp.added, 3);
	fx_stop(&f);
}

/* A server listening on tcp://localhost binds what its resolver gives
 * first, ::1 where /etc/hosts lists it first: the client tries both
 * loopbacks. */
Test(sp, localhost_is_either_loopback)
{
	peer p;
	anc_sp sp;
	anc_error err = {0};
	const uint8_t *rep;
	size_t rlen;

	if (!peer_start6(&p, P_STALE_FIRST))
		cr_skip_test("no IPv6 loopback here");
	cr_assert_eq(anc_sp_init(&sp, p.url, 4096, &err), 0, "%s", err.msg);
	cr_assert_eq(sp.naddr, 2);
	cr_assert_eq(call(&sp, "v6", 2000, &rep, &rlen, &err), 0, "%s: %s",
	             p.url, err.msg);
	cr_assert_eq(rlen, 2);
	anc_sp_fini(&sp);
	peer_stop(&p);
}

Test(sp, which_urls_it_speaks)
{
	cr_assert(anc_sp_supports("ipc:///tmp/x.sock"));
	cr_assert(anc_sp_supports("tcp://127.0.0.1:7700"));
	cr_assert(anc_sp_supports("tcp://localhost:7700"));
	cr_assert(anc_sp_supports("tcp://[::1]:7700"));
	cr_assert(anc_sp_supports("tcp6://localhost:7700"));
	cr_assert(anc_sp_supports("tcp4://10.1.2.3:1"));
	/* names go to nng: a lookup could outlive the timeout */
	cr_assert_not(anc_sp_supports("tcp://db.example:7700"));
	cr_assert_not(anc_sp_supports("tcp4://[::1]:7700"));
	cr_assert_not(anc_sp_supports("tls+tcp://127.0.0.1:7700"));
	cr_assert_not(anc_sp_supports("inproc://x"));
	cr_assert_not(anc_sp_supports(NULL));
}

Test(sp, silent_peer_times_out_within_the_timeout)
{
	fx f;

	fx_start(&f, 0, P_SILENT, 4096);
	double took = fcall_timeout(&f, "x", 300);
	cr_assert(took >= 0.29 && took < 1.5, "took %.2f s", took);
	/* the next call starts on a fresh connection and times out too */
	cr_assert_eq(fcall(&f, "y", 300), ANC_ETIMEOUT);
	cr_assert_eq(f.sp.added, 2);
	cr_assert_eq(f.sp.lost, 0, "a timeout is not a lost connection");
	fx_stop(&f);
}

Test(sp, nothing_listening)
{
	anc_sp sp;
	anc_error err = {0};
	const uint8_t *rep;
	size_t rlen;
	const char *url = tu_ipc_url(tu_tmpdir(), "nobody.sock");

	cr_assert_eq(anc_sp_init(&sp, url, 4096, &err), 0);
	cr_assert_eq(anc_sp_connect_now(&sp, 1000, &err), ANC_EUNAVAILABLE);
	cr_assert(strstr(err.msg, "No such file") != NULL, "%s", err.msg);
	/* waited for to the end of the timeout, no longer */
	for (int ms = 150; ms <= 250; ms += 100) {
		double t0 = tu_now();
		cr_assert_eq(call(&sp, "x", ms, &rep, &rlen, &err),
		             ANC_ETIMEOUT);
		double took = tu_now() - t0;
		cr_assert(took >= ms / 1000.0 - 0.005 && took < 1.0,
		          "%d ms: took %.3f s", ms, took);
	}
	anc_sp_fini(&sp);

	char tcp[64];
	snprintf(tcp, sizeof tcp, "tcp://127.0.0.1:%u", tu_free_port());
	cr_assert_eq(anc_sp_init(&sp, tcp, 4096, &err), 0);
	cr_assert_eq(anc_sp_connect_now(&sp, 1000, &err), ANC_EUNAVAILABLE);
	cr_assert(strstr(err.msg, "Connection refused") != NULL, "%s",
	          err.msg);
	anc_sp_fini(&sp);

	/* a path too long for a socket address is said at once */
	char longurl[300] = "ipc:///tmp/";
	memset(longurl + 11, 'a', 200);
	cr_assert_eq(anc_sp_init(&sp, longurl, 4096, &err), ANC_EINVAL);
	cr_assert(strstr(err.msg, "socket path") != NULL, "%s", err.msg);
	anc_sp_fini(&sp);
}

/* ---- against nng's own REP socket ------------------------------------ */

static void *
nng_echo(void *arg)
{
	nng_socket *s = arg;
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(*s, &m, 0) != 0)
			return NULL;
		if (nng_sendmsg(*s, m, 0) != 0)
			nng_msg_free(m);
	}
}

/* nng's own REP socket on url, answering every request with itself. */
typedef struct echo {
	nng_socket rep;
	pthread_t t;
} echo;

static void
echo_start(echo *e, const char *url)
{
	cr_assert_eq(nng_rep0_open(&e->rep), 0);
	cr_assert_eq(nng_socket_set_size(e->rep, NNG_OPT_RECVMAXSZ, 1 << 20),
	             0);
	cr_assert_eq(nng_listen(e->rep, url, NULL, 0), 0);
	cr_assert_eq(pthread_create(&e->t, NULL, nng_echo, &e->rep), 0);
}

static void
echo_stop(echo *e)
{
	nng_close(e->rep); /* ends nng_echo's receive */
	pthread_join(e->t, NULL);
}

Test(sp, byte_compatible_with_nng_rep)
{
	static uint8_t big[300000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 7);
	for (int ipc = 0; ipc <= 1; ipc++) {
		char url[128];
		echo e;
		anc_sp sp;
		anc_error err = {0};
		const uint8_t *r;
		size_t rlen;

		if (ipc)
			snprintf(url, sizeof url, "%s",
			         tu_ipc_url(tu_tmpdir(), "rep.sock"));
		else
			snprintf(url, sizeof url, "tcp://127.0.0.1:%u",
			         tu_free_port());
		echo_start(&e, url);
		cr_assert_eq(anc_sp_init(&sp, url, 1 << 20, &err), 0);
		for (int i = 0; i < 200; i++) {
			size_t n = i % 2 ? sizeof big - (size_t)i : (size_t)i;
			cr_assert_eq(anc_sp_call(&sp, big, n, 5000, &r, &rlen,
			                         &err), 0, "%s: %s", url, err.msg);
			cr_assert_eq(rlen, n);
			cr_assert_eq(memcmp(r, big, n), 0);
		}
		cr_assert_eq(sp.added, 1);
		anc_sp_fini(&sp);
		echo_stop(&e);
	}
}

/* After fork() the child must not use its parent's connection: both
 * would send the same request IDs on one stream and read each other's
 * replies. Parent and child call at once, each checking every reply is
 * its own. */
Test(sp, fork_child_gets_its_own_connection)
{
	static char url[128];
	echo e;
	anc_sp sp;
	anc_error err = {0};
	const uint8_t *r;
	size_t rlen;
	pid_t pid;
	int st;

	snprintf(url, sizeof url, "%s", tu_ipc_url(tu_tmpdir(), "fork.sock"));
	echo_start(&e, url);
	cr_assert_eq(anc_sp_init(&sp, url, 1 << 20, &err), 0);
	cr_assert_eq(anc_sp_call(&sp, "x", 1, 5000, &r, &rlen, &err), 0, "%s",
	             err.msg);
	cr_assert_eq((pid = fork()) >= 0, 1);
	int bad = 0;
	for (int i = 0; i < 300; i++) {
		char msg[32];
		snprintf(msg, sizeof msg, "%s %d", pid == 0 ? "child" : "parent",
		         i);
		if (anc_sp_call(&sp, msg, strlen(msg), 5000, &r, &rlen, &err) !=
		        0 || rlen != strlen(msg) || memcmp(r, msg, rlen) != 0)
			bad++;
	}
	if (pid == 0)
		_exit(bad == 0 ? 0 : 1);
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert_eq(bad, 0, "the parent got %d answers not its own", bad);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "the child got answers not its own");
	anc_sp_fini(&sp);
	echo_stop(&e);
}

/* ---- the client library over both transports, a real server ---------- */

Test(sp, client_calls_over_sp_and_over_nng_agree)
{
	tu_server srv;
	const char *tmp = tu_tmpdir();
	const char *url = tu_ipc_url(tmp, "s.sock");
	anc_client_options opt;
	anc_error err = {0};

	tu_server_start(&srv, tu_path(tmp, "data"), url, "--nosync", NULL);
	for (int nng = 0; nng <= 1; nng++) {
		anc_client *c = NULL;
		anc_resp *r = NULL;
		anc_client_options_default(&opt);
		opt.use_nng = nng;
		opt.dial_now = 1;
		cr_assert_eq(anc_client_open(url, &opt, &c, &err), 0, "%s",
		             err.msg);
		cr_assert_eq(anc_client_ping(c, &r, &err), 0, "%s", err.msg);
		anc_resp_free(r);
		cr_assert_eq(anc_client_collection_create(c, nng ? "b" : "a",
		                                          &r, &err), 0, "%s",
		             err.msg);
		anc_resp_free(r);
		cr_assert_eq(anc_client_info(c, &r, &err), 0, "%s", err.msg);
		cr_assert_eq(r->u.info.ncollections, (uint32_t)nng + 1);
		anc_resp_free(r);
		anc_client_close(c);
	}
	/* A pipeline on a client whose calls use sp opens nng's socket and
	 * finishes its handshake first: opened and closed at once twenty
	 * times, the ipc:// listener still accepts (nanomsg/nng#1518), also
	 * when the client has made no call yet (dial_now 0, odd rounds). */
	for (int i = 0; i < 20; i++) {
		anc_client *c = NULL;
		anc_pipeline *p = NULL;
		anc_client_options_default(&opt);
		opt.dial_now = i % 2 == 0;
		cr_assert_eq(anc_client_open(url, &opt, &c, &err), 0, "%s",
		             err.msg);
		cr_assert_eq(anc_pipeline_open(c, 2, &p, &err), 0, "%s",
		             err.msg);
		anc_pipeline_close(p);
		anc_client_close(c);
	}
	anc_client *c = NULL;
	anc_client_options_default(&opt);
	opt.timeout_ms = 3000;
	opt.use_nng = 1;
	cr_assert_eq(anc_client_open(url, &opt, &c, &err), 0, "%s", err.msg);
	cr_assert_eq(anc_client_ping(c, NULL, &err), 0, "%s", err.msg);
	anc_client_close(c);

	/* With the server gone after a call: the next call's timeout does
	 * not claim the request was lost in a connection (it never went
	 * out), and a pipeline still opens, as with nng, and works once the
	 * server is back. */
	anc_client_options_default(&opt);
	opt.timeout_ms = 1000;
	cr_assert_eq(anc_client_open(url, &opt, &c, &err), 0, "%s", err.msg);
	cr_assert_eq(anc_client_ping(c, NULL, &err), 0, "%s", err.msg);
	tu_server_stop(&srv);
	cr_assert_eq(anc_client_ping(c, NULL, &err), ANC_ETIMEOUT);
	cr_assert_null(strstr(err.msg, "may have been applied"), "%s", err.msg);
	/* and says no connection could be made, not that the server did not
	 * read the request */
	cr_assert_not_null(strstr(err.msg, "without a connection"), "%s",
	                   err.msg);
	anc_pipeline *p = NULL;
	double t0 = tu_now();
	cr_assert_eq(anc_pipeline_open(c, 2, &p, &err), 0, "%s", err.msg);
	cr_assert_lt(tu_now() - t0, 1.5, "open waited");
	tu_server_start(&srv, tu_path(tmp, "data"), url, "--nosync", NULL);
	cr_assert_eq(anc_client_ping(c, NULL, &err), 0, "%s", err.msg);
	float v[2] = {1, 2};
	anc_record rec = {"s", "c", NULL, NULL, 0, v, 2};
	uint64_t tag = 0;
	anc_resp *r = NULL;
	cr_assert_eq(anc_pipeline_upsert(p, "a", "nope@1", &rec, 1, 9, &err),
	             0, "%s", err.msg);
	/* an answer from the server (no such contract), not a timeout */
	int rc = anc_pipeline_wait(p, &tag, &r, &err);
	cr_assert_eq(rc, ANC_ENOCONTRACT, "%s: %s", anc_errname(rc),
	             err.msg);
	cr_assert_eq(tag, 9);
	anc_pipeline_close(p);
	anc_client_close(c);
	tu_server_stop(&srv);
}
