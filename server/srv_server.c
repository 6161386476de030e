/*
 * srv_server.c — listeners and the worker pool.
 *
 * Threading model
 * ---------------
 * One nng REP socket, any number of listeners on it (tcp://, ipc://). A
 * fixed pool of worker threads, each with its own nng context and aio, runs
 * the loop "receive; handle; reply" synchronously. Handling happens on the
 * worker's own thread, never on an nng callback thread, so a long search or
 * a write batch can't stall nng's I/O. The engine (index/) is thread-safe:
 * searches run concurrently, writes are serialised inside it.
 *
 * Why not handle requests in nng's aio callback and save the wake-up of
 * the worker (issue 6)? A bare nng 1.5.2 REQ/REP ping on this kind of
 * 2-core VM measured p50 159-163 us with a callback server against
 * 164-171 us with aio_wait workers: within the noise, and nowhere near
 * worth running searches on nng's threads. Requests are spread over the
 * workers by nng (each idle context takes the next one); the default of
 * 2 x CPUs workers (at least 4) lets a worker that blocks in a write's
 * commit not idle a core, and on the single-query path no OpenMP team
 * exists (vindex.c), so the workers are the only search threads.
 *
 * Shutdown: the stop flag is set (new connections are closed as they
 * come, in pipe_event), and every worker that is waiting in receive is
 * cancelled under its lock. A worker that is handling a request finishes,
 * sends its reply, then sees the flag and exits. Then the engine is
 * snapshotted and closed, and only then the socket and its listeners
 * (closing a listener closes its connections, replies in them included).
 * The per-worker lock makes "cancel only while receiving" exact: a reply
 * is never cancelled.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>

#include "srv_http.h"
#include "srv_server.h"

enum wstate { W_IDLE, W_RECV, W_BUSY, W_SEND, W_DONE };

/* How long a stopping server waits for a reply a client does not read. */
#define STOP_SEND_GRACE_MS 2000

typedef struct worker {
	anc_server *srv;
	pthread_t thr;
	int started;
	nng_ctx ctx;
	int ctx_open;
	nng_aio *aio;
	pthread_mutex_t mtx;
	enum wstate state;
	anc_buf out;
} worker;

struct anc_server {
	anc_server_config cfg;
	int lockfd;  /* flock'd DIR/LOCK: one server per data directory */
	anc_db *db;
	nng_socket sock;
	int sock_open;
	nng_listener lst[ANC_SERVER_MAX_LISTEN];
	int nlst;
	worker *w;
	int nw;
	atomic_uint npipes; /* open connections, for max_connections */
	/* Set under each worker's mtx in turn (the worker decides under
	 * its own); atomic, as nng's pipe callbacks and the unlocked reads
	 * share no lock with it (a TSan run named it). */
	atomic_int stopping;
	srv_http *http;        /* NULL when off */
};

void
anc_server_config_default(anc_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	anc_limits_default(&cfg->limits);
	anc_db_options_default(&cfg->db);
	cfg->max_connections = 1024;
	cfg->send_timeout_ms = 10000;
}

static int
nng_fail(anc_error *err, int rv, const char *what)
{
	return anc_error_set(err, rv == NNG_ENOMEM ? ANC_ENOMEM
	                                           : ANC_ETRANSPORT,
	                     "%s: %s", what, nng_strerror(rv));
}

static int
mkdir_p(const char *dir, anc_error *err)
{
	char buf[4096];
	size_t n = strlen(dir);
	if (n == 0 || n >= sizeof(buf))
		return anc_error_set(err, ANC_EINVAL,
		    "--data: path must be 1..%zu bytes", sizeof(buf) - 1);
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return anc_error_set(err, ANC_EIO, "mkdir %s: %s", buf,
			                     strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) != 0 && errno != EEXIST)
		return anc_error_set(err, ANC_EIO, "mkdir %s: %s", buf,
		                     strerror(errno));
	return ANC_OK;
}

/*
 * The engine's faiss indexes live in this process only: a second server on
 * the same directory would serve indexes that miss the first one's writes
 * and overwrite its snapshots. LMDB alone would allow it, so take an
 * exclusive lock first. flock is released by the kernel when the process
 * dies, so a SIGKILL leaves no stale lock behind.
 */
static int
lock_data_dir(const char *dir, int *fdp, anc_error *err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return anc_error_set(err, ANC_EIO, "open %s: %s", path,
		                     strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return anc_error_set(err, ANC_EUNAVAILABLE,
			    "data directory %s is in use by another "
			    "anchorage-server (lock %s)", dir, path);
		return anc_error_set(err, ANC_EIO, "flock %s: %s", path,
		                     strerror(e));
	}
	*fdp = fd;
	return ANC_OK;
}

/* Receive one message; returns NULL when stopping or the socket closed. */
static nng_msg *
worker_recv(worker *w)
{
	pthread_mutex_lock(&w->mtx);
	if (w->srv->stopping) {
		pthread_mutex_unlock(&w->mtx);
		return NULL;
	}
	w->state = W_RECV;
	/* Waiting for a request may take forever; only replies time out. */
	nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
	nng_ctx_recv(w->ctx, w->aio);
	pthread_mutex_unlock(&w->mtx);

	nng_aio_wait(w->aio);

	pthread_mutex_lock(&w->mtx);
	w->state = W_BUSY;
	pthread_mutex_unlock(&w->mtx);

	int rv = nng_aio_result(w->aio);
	if (rv != 0) {
		if (rv != NNG_ECLOSED && rv != NNG_ECANCELED &&
		    !w->srv->cfg.quiet)
			fprintf(stderr, "anchorage-server: receive: %s\n",
			        nng_strerror(rv));
		return NULL;
	}
	return nng_aio_get_msg(w->aio);
}

static void *
worker_main(void *arg)
{
	worker *w = arg;
	anc_server *srv = w->srv;

	for (;;) {
		nng_msg *msg = worker_recv(w);
		if (msg == NULL) {
			if (srv->stopping)
				break;
			/* A transient receive failure (e.g. a peer that
			 * went away): keep serving. */
			continue;
		}
		int rv = anc_server_handle(srv->db, srv->cfg.auth,
		                           &srv->cfg.limits,
		                           nng_msg_body(msg), nng_msg_len(msg),
		                           &w->out);
		if (rv != ANC_OK) {
			/* Not even an error reply could be built (out of
			 * memory): drop the request; the client times out. */
			nng_msg_free(msg);
			continue;
		}
		/* Reuse the request message for the reply. */
		nng_msg_clear(msg);
		if ((rv = nng_msg_append(msg, w->out.data, w->out.len)) != 0) {
			fprintf(stderr, "anchorage-server: reply: %s\n",
			        nng_strerror(rv));
			nng_msg_free(msg);
			continue;
		}
		nng_aio_set_msg(w->aio, msg);
		/* A peer that never reads its reply must not hold this
		 * worker: the send gives up after send_timeout_ms, and a
		 * stopping server waits STOP_SEND_GRACE_MS at most (a send
		 * already under way then is cancelled by server_quiesce). */
		pthread_mutex_lock(&w->mtx);
		nng_aio_set_timeout(w->aio, srv->stopping &&
		    srv->cfg.send_timeout_ms > STOP_SEND_GRACE_MS
		        ? STOP_SEND_GRACE_MS : srv->cfg.send_timeout_ms);
		w->state = W_SEND;
		nng_ctx_send(w->ctx, w->aio);
		pthread_mutex_unlock(&w->mtx);
		nng_aio_wait(w->aio);
		pthread_mutex_lock(&w->mtx);
		w->state = W_BUSY;
		pthread_mutex_unlock(&w->mtx);
		if ((rv = nng_aio_result(w->aio)) != 0) {
			/* The peer is gone; the reply has nowhere to go. */
			nng_msg_free(nng_aio_get_msg(w->aio));
		}
		/* Keep the buffer from growing without bound after one
		 * huge reply. */
		if (w->out.cap > (1u << 24))
			anc_buf_free(&w->out);
	}
	pthread_mutex_lock(&w->mtx);
	w->state = W_DONE;
	pthread_mutex_unlock(&w->mtx);
	return NULL;
}

/*
 * Connection cap: a pipe over the limit is closed before the socket sees
 * it (NNG_PIPE_EV_ADD_PRE). nng delivers NNG_PIPE_EV_REM_POST for every
 * pipe that had ADD_PRE, a refused one included (nni_pipe_run_cb), so
 * every ADD_PRE counts one and every REM_POST takes one away. (Undoing
 * the count of a refused pipe at ADD_PRE as well, as this did, took two
 * away for it: after the first refusal the cap was one higher, and so on,
 * so it stopped holding at all.) Runs on nng's threads: it only counts.
 */
static void
pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	anc_server *srv = arg;
	if (ev == NNG_PIPE_EV_ADD_PRE) {
		unsigned n = atomic_fetch_add(&srv->npipes, 1) + 1;
		/* stopping: the listeners stay open until the last replies
		 * are out (server_quiesce), but take nobody new */
		if (srv->stopping || n > srv->cfg.max_connections)
			(void)nng_pipe_close(p); /* already closing is fine */
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		atomic_fetch_sub(&srv->npipes, 1);
	}
}

static int
read_file(const char *path, char **out, anc_error *err)
{
	struct stat sb;
	FILE *f;
	long n;
	char *buf = NULL;
	int known = stat(path, &sb) == 0; /* else fopen names the error */
	if (known && !S_ISREG(sb.st_mode))
		return anc_error_set(err, ANC_EINVAL, "read %s: %s, expected "
		                     "a PEM file", path, S_ISDIR(sb.st_mode)
		                     ? "a directory" : "not a regular file");
	if (known && sb.st_size > (1 << 20))
		return anc_error_set(err, ANC_ETOOBIG, "read %s: %lld bytes, "
		                     "at most 1 MiB", path,
		                     (long long)sb.st_size);
	errno = 0;
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    n > (1 << 20) || fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL ||
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		int e = errno;
		if (f != NULL)
			fclose(f);
		free(buf);
		return anc_error_set(err, ANC_EIO, "read %s: %s", path,
		                     e ? strerror(e) : "changed while read");
	}
	fclose(f);
	buf[n] = '\0';
	*out = buf;
	return ANC_OK;
}

/* The certificate's public key must be the key's: nng (mbedTLS) takes a
 * mismatched pair, and every handshake then fails, which a client sees
 * only as a timeout. OpenSSL reads both PEMs (with the password, if any)
 * and compares them. A key OpenSSL cannot read is left to nng's own
 * check, which names it. */
static int
tls_pair_check(const char *what, const char *certfile, const char *cert,
               const char *keyfile, const char *key, const char *password,
               anc_error *err)
{
	BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
	X509 *x = cb != NULL ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, NULL,
	                               (void *)password) : NULL;
	int rv = ANC_OK;

	if (x != NULL && k != NULL && X509_check_private_key(x, k) != 1)
		rv = anc_error_set(err, ANC_EINVAL, "%s: the key %s is not the "
		    "key of the certificate %s (every TLS handshake would "
		    "fail)", what, keyfile, certfile);
	ERR_clear_error();
	EVP_PKEY_free(k);
	X509_free(x);
	BIO_free(kb);
	BIO_free(cb);
	return rv;
}

/* One listener; tls+tcp:// gets the server certificate and key. */
static int
server_listen(anc_server *srv, const char *url, nng_listener *l,
              anc_error *err)
{
	char what[600];
	nng_tls_config *tls = NULL;
	char *cert = NULL, *key = NULL;
	int rv, code = ANC_OK;

	snprintf(what, sizeof(what), "listen on %s", url);
	if ((rv = nng_listener_create(l, srv->sock, url)) != 0)
		return nng_fail(err, rv, what);
	if (strncmp(url, "tls+", 4) == 0) {
		const anc_server_config *c = &srv->cfg;
		if (c->tls_cert_file == NULL || c->tls_key_file == NULL) {
			code = anc_error_set(err, ANC_EINVAL,
			    "%s: a tls+tcp:// listener needs tls.cert and "
			    "tls.key in the --config file", what);
			goto leave;
		}
		if ((code = read_file(c->tls_cert_file, &cert, err)) ||
		    (code = read_file(c->tls_key_file, &key, err)) ||
		    (code = tls_pair_check(what, c->tls_cert_file, cert,
		                           c->tls_key_file, key,
		                           c->tls_key_password, err)))
			goto leave;
		if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_SERVER)) ||
		    (rv = nng_tls_config_own_cert(tls, cert, key,
		                                  c->tls_key_password))) {
			code = anc_error_set(err, ANC_EINVAL,
			    "%s: certificate %s / key %s: %s%s", what,
			    c->tls_cert_file, c->tls_key_file,
			    nng_strerror(rv), rv == NNG_ECRYPTO
			        ? " (an encrypted key needs the right "
			          "tls.password and an encryption mbedTLS reads: "
			          "see the README's TLS section)" : "");
			goto leave;
		}
		if ((rv = nng_listener_set_ptr(*l, NNG_OPT_TLS_CONFIG, tls))) {
			code = nng_fail(err, rv, what);
			goto leave;
		}
	}
	if ((rv = nng_listener_start(*l, 0)) != 0)
		code = nng_fail(err, rv, what);
leave:
	if (tls != NULL)
		nng_tls_config_free(tls); /* the listener holds a reference */
	if (key != NULL) {
		memset(key, 0, strlen(key));
		free(key);
	}
	free(cert);
	if (code != ANC_OK)
		nng_listener_close(*l);
	return code;
}

static void
server_free(anc_server *srv)
{
	if (srv == NULL)
		return;
	for (int i = 0; i < srv->nw; i++) {
		worker *w = &srv->w[i];
		if (w->ctx_open)
			nng_ctx_close(w->ctx);
		nng_aio_free(w->aio);
		pthread_mutex_destroy(&w->mtx);
		anc_buf_free(&w->out);
	}
	free(srv->w);
	/* Fault injection for the close watchdog's test (e2e_server_test):
	 * behave as nng's close race does, never return. */
	if (srv->sock_open && getenv("ANCHORAGE_TEST_CLOSE_HANG") != NULL)
		for (;;)
			pause();
	if (srv->sock_open && srv->stopping) {
		/* nng completes a reply's send when the connection takes
		 * it, before it is written: give the last ones a moment */
		struct timespec ts = {0, 100 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (srv->sock_open)
		nng_close(srv->sock);
	if (srv->lockfd >= 0)
		close(srv->lockfd); /* releases the flock */
	free(srv);
}

/* Stop taking connections and requests, let the workers finish what they
 * hold and exit. The engine stays open; the socket and its listeners are
 * closed by server_free: closing a listener closes the connections it
 * accepted, and with them the replies just handed to them (a newcomer's
 * run found batches committed during a Ctrl-C whose client never heard
 * of it). */
static void
server_quiesce(anc_server *srv)
{
	for (int i = 0; i < srv->nw; i++) {
		worker *w = &srv->w[i];
		pthread_mutex_lock(&w->mtx);
		srv->stopping = 1;
		if (w->state == W_RECV)
			nng_aio_cancel(w->aio);
		pthread_mutex_unlock(&w->mtx);
	}
	srv->stopping = 1; /* none of the loop's when there is no worker */
	/* A reply a client does not read holds its worker for up to
	 * send_timeout_ms (which may be an hour): after a grace period,
	 * cancel sends still under way. A worker still handling a request
	 * is left to finish; its own send is bounded by the grace. */
	for (int waited = 0; waited < STOP_SEND_GRACE_MS; waited += 10) {
		int busy = 0;
		for (int i = 0; i < srv->nw; i++) {
			worker *w = &srv->w[i];
			pthread_mutex_lock(&w->mtx);
			busy += w->started && w->state == W_SEND;
			pthread_mutex_unlock(&w->mtx);
		}
		if (busy == 0)
			break;
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < srv->nw; i++) {
		worker *w = &srv->w[i];
		pthread_mutex_lock(&w->mtx);
		if (w->started && w->state == W_SEND)
			nng_aio_cancel(w->aio);
		pthread_mutex_unlock(&w->mtx);
	}
	for (int i = 0; i < srv->nw; i++) {
		worker *w = &srv->w[i];
		if (w->started)
			pthread_join(w->thr, NULL);
		w->started = 0;
	}
}

int
anc_server_start(const anc_server_config *cfg, anc_server **out,
                 anc_error *err)
{
	anc_server *srv;
	int rv;

	*out = NULL;
	if (cfg->data_dir == NULL)
		return anc_error_set(err, ANC_EINVAL, "--data: required");
	if (cfg->nlisten < 1)
		return anc_error_set(err, ANC_EINVAL,
		                     "--listen: at least one URL is required");
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return anc_error_set(err, ANC_ENOMEM, "server: out of memory");
	srv->cfg = *cfg;
	srv->lockfd = -1;
	if (srv->cfg.workers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		srv->cfg.workers = (int)(n > 0 ? 2 * n : 4);
		if (srv->cfg.workers < 4)
			srv->cfg.workers = 4;
	}
	if (srv->cfg.workers > 256)
		srv->cfg.workers = 256;
	for (int i = 0; i < cfg->nlisten; i++)
		if ((rv = anc_url_listen_check(cfg->listen[i], err)) != ANC_OK)
			goto fail;
	if (anc_auth_count(cfg->auth) == 0) {
		for (int i = 0; i < cfg->nlisten; i++)
			if (!anc_url_is_local(cfg->listen[i])) {
				rv = anc_error_set(err, ANC_EINVAL,
				    "listen on %s: no API keys are configured, "
				    "so only loopback (127.0.0.0/8, localhost, "
				    "[::1]) and ipc:// listeners are allowed; add "
				    "keys with --config", cfg->listen[i]);
				goto fail;
			}
		/* The HTTP listener shows collection and contract names:
		 * the same rule. */
		if (cfg->http != NULL && strcmp(cfg->http, "off") != 0 &&
		    strchr(cfg->http, ':') != NULL &&
		    strstr(cfg->http, "://") == NULL) {
			/* (a malformed one is srv_http_start's to name) */
			char u[300];
			anc_error uerr;
			snprintf(u, sizeof u, "tcp://%s", cfg->http);
			if (anc_url_check(u, 1, "--http", &uerr) == ANC_OK &&
			    !anc_url_is_local(u)) {
				rv = anc_error_set(err, ANC_EINVAL,
				    "%s %s: no API keys are configured, so "
				    "the HTTP listener must be on loopback "
				    "(127.0.0.0/8, localhost, [::1]); add keys "
				    "with --config (then /metrics and "
				    "/api/v1/drift need one)",
				    cfg->http_name ? cfg->http_name : "--http",
				    cfg->http);
				goto fail;
			}
		}
	}

	if ((rv = mkdir_p(cfg->data_dir, err)) != ANC_OK ||
	    (rv = lock_data_dir(cfg->data_dir, &srv->lockfd, err)) != ANC_OK)
		goto fail;
	/* An answer over the max message could not travel (the peer's nng
	 * drops it): resolve and query stop short of building one. */
	if (srv->cfg.db.reply_max == 0 ||
	    srv->cfg.db.reply_max > srv->cfg.limits.max_message)
		srv->cfg.db.reply_max = srv->cfg.limits.max_message;
	if ((rv = anc_db_open(cfg->data_dir, &srv->cfg.db, &srv->db, err)) !=
	    ANC_OK) {
		anc_error_wrap(err, "data directory %s", cfg->data_dir);
		goto fail;
	}
	if ((rv = nng_rep0_open(&srv->sock)) != 0) {
		rv = nng_fail(err, rv, "nng_rep0_open");
		goto fail;
	}
	srv->sock_open = 1;
	/* Enforced by nng before it allocates: an oversized message closes
	 * that connection instead of costing memory. */
	if ((rv = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
	                              (size_t)cfg->limits.max_message +
	                                  ANC_NNG_HEADER_SLACK)) != 0) {
		rv = nng_fail(err, rv, "NNG_OPT_RECVMAXSZ");
		goto fail;
	}

	if ((srv->w = calloc((size_t)srv->cfg.workers, sizeof(worker))) ==
	    NULL) {
		rv = anc_error_set(err, ANC_ENOMEM, "server: out of memory");
		goto fail;
	}
	for (int i = 0; i < srv->cfg.workers; i++) {
		worker *w = &srv->w[i];
		w->srv = srv;
		if ((rv = pthread_mutex_init(&w->mtx, NULL)) != 0) {
			rv = anc_error_set(err, ANC_EINTERNAL,
			                   "pthread_mutex_init: %s", strerror(rv));
			goto fail;
		}
		srv->nw++;
		if ((rv = nng_aio_alloc(&w->aio, NULL, NULL)) != 0) {
			rv = nng_fail(err, rv, "nng_aio_alloc");
			goto fail;
		}
		if ((rv = nng_ctx_open(&w->ctx, srv->sock)) != 0) {
			rv = nng_fail(err, rv, "nng_ctx_open");
			goto fail;
		}
		w->ctx_open = 1;
	}
	if ((rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE, pipe_event,
	                          srv)) != 0 ||
	    (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, pipe_event,
	                          srv)) != 0) {
		rv = nng_fail(err, rv, "nng_pipe_notify");
		goto fail;
	}
	for (int i = 0; i < cfg->nlisten; i++) {
		if ((rv = server_listen(srv, cfg->listen[i], &srv->lst[i],
		                        err)) != ANC_OK)
			goto fail;
		srv->nlst++;
	}
	for (int i = 0; i < srv->nw; i++) {
		worker *w = &srv->w[i];
		if ((rv = pthread_create(&w->thr, NULL, worker_main, w)) != 0) {
			rv = anc_error_set(err, ANC_EINTERNAL,
			                   "pthread_create: %s", strerror(rv));
			goto fail;
		}
		w->started = 1;
	}
	if (cfg->http != NULL && strcmp(cfg->http, "off") != 0) {
		anc_error herr;
		anc_error_clear(&herr);
		rv = srv_http_start(cfg->http, srv->db, cfg->data_dir,
		                    cfg->auth, cfg->http_name, &srv->http, &herr);
		if (rv != ANC_OK && !(cfg->http_optional && rv == ANC_ETRANSPORT)) {
			if (err != NULL)
				*err = herr;
			goto fail;
		}
		if (rv != ANC_OK && !cfg->quiet)
			fprintf(stderr, "anchorage-server: warning: no HTTP "
			        "listener: %s\n", herr.msg);
		rv = ANC_OK;
		srv_http_set_ready(srv->http, 1);
	}
	*out = srv;
	return ANC_OK;

fail:
	server_quiesce(srv);
	if (srv->db != NULL)
		(void)anc_db_close(srv->db, NULL); /* the first error wins */
	server_free(srv);
	return rv;
}

anc_db *
anc_server_db(anc_server *srv)
{
	return srv->db;
}

const char *
anc_server_http_url(anc_server *srv)
{
	return srv->http != NULL ? srv_http_url(srv->http) : NULL;
}

/* The close watchdog (anc_server_config.close_watchdog_s). */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int armed, done, seconds, status, quiet;
} wd = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0};

static void *
close_watchdog(void *arg)
{
	struct timespec dl;

	(void)arg;
	clock_gettime(CLOCK_REALTIME, &dl);
	pthread_mutex_lock(&wd.mu);
	dl.tv_sec += wd.seconds;
	while (!wd.done)
		if (pthread_cond_timedwait(&wd.cv, &wd.mu, &dl) == ETIMEDOUT &&
		    !wd.done) {
			/* write(2) and _exit(2) only: another thread is stuck
			 * inside nng holding who knows what */
			static const char msg[] =
			    "anchorage-server: nng did not close its socket in "
			    "time (a known nng 1.5.2 race); the data is already "
			    "closed and synced: exiting\n";
			if (!wd.quiet)
				(void)!write(STDERR_FILENO, msg, sizeof msg - 1);
			_exit(wd.status == ANC_OK ? 0 : 1);
		}
	pthread_mutex_unlock(&wd.mu);
	return NULL;
}

static void
close_watchdog_arm(int seconds, int status, int quiet)
{
	pthread_t t;

	if (seconds <= 0)
		return;
	pthread_mutex_lock(&wd.mu);
	wd.done = 0;
	wd.seconds = seconds;
	wd.status = status;
	wd.quiet = quiet;
	wd.armed = pthread_create(&t, NULL, close_watchdog, NULL) == 0;
	if (wd.armed)
		(void)pthread_detach(t);
	pthread_mutex_unlock(&wd.mu);
}

static void
close_watchdog_disarm(void)
{
	pthread_mutex_lock(&wd.mu);
	wd.done = 1;
	pthread_cond_broadcast(&wd.cv);
	pthread_mutex_unlock(&wd.mu);
}

int
anc_server_stop(anc_server *srv, anc_error *err)
{
	if (srv == NULL)
		return ANC_OK;
	srv_http_set_ready(srv->http, 0);
	server_quiesce(srv);
	srv_http_stop(srv->http); /* it reads the engine: before closing it */
	srv->http = NULL;
	int rv = anc_db_close(srv->db, err);
	srv->db = NULL;
	close_watchdog_arm(srv->cfg.close_watchdog_s, rv, srv->cfg.quiet);
	server_free(srv);
	close_watchdog_disarm();
	return rv;
}
