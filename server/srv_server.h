/*
 * srv_server.h — the anchorage server: nng listeners, a pool of worker
 * threads and the request dispatcher, on top of the engine (index/).
 *
 * Lifecycle: anc_server_start opens the engine and the listeners and starts
 * the workers; anc_server_stop stops accepting, lets every worker finish the
 * request it is handling and send its reply, joins the workers, closes the
 * socket, snapshots and closes the engine. Both are called from one thread
 * (main); the server itself is internally threaded (see srv_server.c).
 */
#ifndef ANC_SRV_SERVER_H
#define ANC_SRV_SERVER_H

#include <stdint.h>

#include "anc_error.h"
#include "anc_index.h"
#include "anc_proto.h"
#include "anc_url.h"
#include "srv_auth.h"

#define ANC_SERVER_MAX_LISTEN 16

typedef struct anc_server_config {
	const char *data_dir;                        /* required */
	const char *listen[ANC_SERVER_MAX_LISTEN];   /* nng URLs */
	int nlisten;
	int workers;           /* worker threads; 0 = default */
	anc_limits limits;     /* limits.max_message also set on the socket */
	anc_db_options db;     /* engine options */
	int quiet;             /* no informational lines on stderr */

	/* Security. With no keys, every listener must be loopback or ipc://
	 * (anc_server_start refuses others). auth is borrowed: it must
	 * outlive the server. */
	const anc_auth *auth;        /* NULL or no keys: authentication off */
	const char *tls_cert_file;   /* PEM certificate (chain) for tls+tcp:// */
	const char *tls_key_file;    /* PEM private key for tls+tcp:// */
	const char *tls_key_password;/* NULL if the key is not encrypted */

	/* Resources. */
	uint32_t max_connections;  /* open connections at once; default 1024 */
	int send_timeout_ms;       /* a reply the peer does not take within
	                              this frees its worker; default 10000 */

	/* HTTP listener (srv_http.h): "HOST:PORT" for /metrics, /healthz,
	 * /readyz, /api/v1/drift and the status page; NULL or "off": none.
	 * http_optional 1: a port already in use is a warning, not an error
	 * (the built-in default, so that several servers on one machine, as
	 * in the tests, still start). */
	const char *http;
	int http_optional;
	const char *http_name; /* what set http, for messages: "--http" (NULL)
	                          or "ANCHORAGE_HTTP" */

	/* anc_server_stop closes the engine (snapshots, LMDB) before nng's
	 * socket. nng 1.5.2 can hang for ever in that last nng_close (a race
	 * in its teardown with connections whose peers vanished, nanomsg/nng
	 * #1543): with close_watchdog_s > 0, a process that is still inside
	 * it after that many seconds prints why and _exit()s with the stop's
	 * status, nothing being left to lose. 0 (the default): wait. The
	 * anchorage-server program sets 10. */
	int close_watchdog_s;
} anc_server_config;

/* Read a JSON configuration file into cfg (see README "Durability and
 * security"): {"keys":[{"id","role","salt","sha256"}], "tls":{"cert","key",
 * "password"?}, "listen":[URL...], "limits":{...}}. Unknown keys are
 * refused, naming them. *auth_out receives the keys (free with
 * anc_auth_free after the server stops); strings are copied into *strings
 * (free() it after the server stops). */
int anc_server_config_load(anc_server_config *cfg, const char *path,
                           anc_auth **auth_out, char **strings,
                           anc_error *err);

/* Can the server listen on url: a scheme it serves, HOST:PORT with a port
 * 1..65535 for tcp, and for ipc:// a path that is not some other file
 * (nng would delete it). ANC_EINVAL / ANC_EEXIST naming url. */
int anc_url_listen_check(const char *url, anc_error *err);

/* Fill defaults: no listeners, workers 0, anc_limits_default,
 * anc_db_options_default. */
void anc_server_config_default(anc_server_config *cfg);

typedef struct anc_server anc_server;

/* Open the engine in cfg->data_dir (created if missing), listen on every
 * URL, start the workers. On failure everything started is stopped again. */
int anc_server_start(const anc_server_config *cfg, anc_server **out,
                     anc_error *err);

/* Graceful stop (see above). Returns the engine's close status; the server
 * is freed in every case. NULL is fine. */
int anc_server_stop(anc_server *srv, anc_error *err);

/* The engine the server runs on (for start-up statistics). */
anc_db *anc_server_db(anc_server *srv);

/* The URL the HTTP listener is bound to ("http://HOST:PORT"), or NULL
 * when there is none. */
const char *anc_server_http_url(anc_server *srv);

/* Handle one request message: decode, dispatch to the engine, encode the
 * reply into out (reset first). Always produces a reply, an error response
 * when anything goes wrong; returns ANC_OK unless even that could not be
 * encoded (ANC_ENOMEM). Thread-safe. Exposed for tests and benchmarks. */
int anc_server_handle(anc_db *db, const anc_auth *auth,
                      const anc_limits *lim, const void *req, size_t len,
                      anc_buf *out);

#endif /* ANC_SRV_SERVER_H */
